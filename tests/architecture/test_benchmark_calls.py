"""The benchmark scripts run outside CI, so a library signature can change under them unseen (cascade_bars.py
passed `super_resolution=` to eval.suite.evaluate_system for sessions after it was gone). Every call they make to
a function imported from the project must name only keywords that function accepts."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from kling.paths import repo_root

SCRIPTS = sorted((repo_root() / "benchmarks").glob("*.py"))
PROJECT = ("kling", "eval", "pipelines")


def _imported(tree: ast.AST) -> dict[str, tuple[str, str]]:
    """local name -> (module, name) for every `from <project module> import name [as local]` in the script (at
    any depth)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PROJECT:
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    return names


def _bad_keywords(script: Path) -> list[str]:
    tree = ast.parse(script.read_text())
    names, bad = _imported(tree), []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
            continue
        module, name = names[node.func.id]
        target = getattr(importlib.import_module(module), name)
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        for kw in node.keywords:
            if kw.arg is not None and kw.arg not in params:
                bad.append(f"{script.name}:{node.lineno} {node.func.id}(... {kw.arg}=...)")
    return bad


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_benchmark_calls_match_the_library(script):
    assert _bad_keywords(script) == []


def test_the_check_sees_a_stale_keyword(tmp_path):
    stale = tmp_path / "stale.py"
    stale.write_text("def main():\n    from eval.suite import evaluate_system\n"
                     "    evaluate_system(1, 2, 3, 4, super_resolution=None)\n")
    assert _bad_keywords(stale) == ["stale.py:3 evaluate_system(... super_resolution=...)"]
