"""The `kling` command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import importlib
import logging

import typer

app = typer.Typer(help="Kling avatar pipeline: curation, weights, evaluation.", no_args_is_help=True, add_completion=False)
eval_app = typer.Typer(help="Evaluate videos with the project's fixed metric protocols.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

# Command modules; each defines register(app) or register(eval_app). Imported lazily at start so that
# `kling --help` stays fast and a missing optional dependency only disables its own command.
_TOP_LEVEL = ["kling.cli.weights", "kling.cli.demo", "kling.cli.curate", "kling.cli.leaderboard", "kling.cli.generate", "kling.cli.direct"]
_EVAL = [
    "kling.cli.eval_sync",
    "kling.cli.eval_identity",
    "kling.cli.eval_adherence",
    "kling.cli.eval_fid",
    "kling.cli.eval_fvd",
    "kling.cli.eval_drift",
]


def _register_all() -> None:
    for name in _TOP_LEVEL + _EVAL:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command module not written yet in this checkout
                continue
            raise
        module.register(eval_app if name in _EVAL else app)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _register_all()
    app()
