# Two commands for a new user: `make demo` and `make test` (see README.md).
# On a GPU machine choose the torch build, e.g.
#   make demo TORCH_SPEC='torch==2.13.0' TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.kling-installed
export KLING_HOME ?= $(CURDIR)/.kling
export DAGSTER_HOME ?= $(KLING_HOME)/dagster_home

.PHONY: setup demo test clean-data

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[setup] torch first ($(TORCH_SPEC)) so that nothing later pulls another build"
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL) --extra-index-url https://pypi.org/simple)
	@$(BIN)/python -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -q -c constraints.txt -c $(VENV)/torch-constraint.txt -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/kling demo

test: setup
	$(BIN)/python -m pytest -q

clean-data:
	rm -rf $(KLING_HOME)
