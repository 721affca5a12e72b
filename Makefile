# Two commands for a new user: `make demo` and `make test` (see README.md).
# On a GPU machine choose the torch build, e.g.
#   make demo TORCH_SPEC='torch==2.13.0' TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
# Every other package pinned to a clean resolve (`make lock` rewrites it); `make setup LOCK=` resolves afresh
# (another platform or Python, where a pinned version may have no wheel).
LOCK ?= constraints.lock
BIN := $(VENV)/bin
STAMP := $(VENV)/.kling-installed
export KLING_HOME ?= $(CURDIR)/.kling
export DAGSTER_HOME ?= $(KLING_HOME)/dagster_home

ORACLES := $(VENV)/oracles

.PHONY: setup lock oracles demo test test-extended clean-data

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(LOCK) Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[setup] torch first ($(TORCH_SPEC)) so that nothing later pulls another build"
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL) --extra-index-url https://pypi.org/simple)
	@$(BIN)/python -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -q -c constraints.txt $(if $(LOCK),-c $(LOCK)) -c $(VENV)/torch-constraint.txt -e '.[dev]'
	@touch $(STAMP)

# constraints.lock from a fresh venv resolved under constraints.txt alone (the newest releases that satisfy it):
# review the diff, then run the demo and its gate before committing it, since a numeric package may move numbers.
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL) --extra-index-url https://pypi.org/simple)
	@$(VENV)-lock/bin/python -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)-lock/torch-constraint.txt
	$(VENV)-lock/bin/python -m pip install -q -c constraints.txt -c $(VENV)-lock/torch-constraint.txt -e '.[dev]'
	{ sed -n '/^#/p' constraints.lock; $(VENV)-lock/bin/python -m pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.lock.new
	mv constraints.lock.new constraints.lock && rm -rf $(VENV)-lock

# Reference implementations the parity tests compare against (never imported by the project): the
# syncnet_python fork, and torchvision's pure-Python models + pytorch-fid for FID (see eval/fid/PARITY.md).
oracles: $(ORACLES)/.installed

$(ORACLES)/.installed: | $(STAMP)
	rm -rf $(ORACLES) && mkdir -p $(ORACLES)/syncnet $(ORACLES)/site $(ORACLES)/wheels
	$(BIN)/python -m pip install -q --no-deps --target $(ORACLES)/syncnet syncnet-python==0.2.3
	$(BIN)/python -m pip download -q --no-deps -d $(ORACLES)/wheels torchvision==0.28.0 pytorch-fid==0.3.0
	$(BIN)/python -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('$(ORACLES)/site') for w in glob.glob('$(ORACLES)/wheels/*.whl')]"
	@touch $@

demo: setup
	$(BIN)/kling demo

# One pytest worker per core (at most 8: each builds the session's demo corpus and sync expert once). The test
# modules run torch at one thread each, so a single worker leaves a second core idle.
PYTEST_WORKERS ?= -n auto --maxprocesses 8

test: setup oracles
	KLING_SYNCNET_ORACLE=$(CURDIR)/$(ORACLES)/syncnet KLING_ORACLE_PATH=$(CURDIR)/$(ORACLES)/site \
	  $(BIN)/python -m pytest -q --durations=25 -m "not extended" $(PYTEST_WORKERS)

# The runs the default suite leaves out (marker `extended`, ~12 min on 2 cores): the curation graph's Dagster runs and
# the README's own-data steps end to end; the default suite tests their parts, `make demo` the whole on the demo corpus.
test-extended: setup oracles
	KLING_SYNCNET_ORACLE=$(CURDIR)/$(ORACLES)/syncnet KLING_ORACLE_PATH=$(CURDIR)/$(ORACLES)/site \
	  $(BIN)/python -m pytest -q --durations=25 -m extended

clean-data:
	rm -rf $(KLING_HOME)
