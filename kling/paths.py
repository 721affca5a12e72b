"""Where the project keeps its data, weights and Dagster home (all overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path


def kling_home() -> Path:
    """Root of everything the pipeline writes: $KLING_HOME, else ~/.cache/kling."""
    return Path(os.environ.get("KLING_HOME") or Path.home() / ".cache" / "kling").expanduser()


def data_dir() -> Path:
    return kling_home() / "data"


def weights_dir() -> Path:
    """Standard weight files: $KLING_WEIGHTS, else <kling_home>/weights."""
    env = os.environ.get("KLING_WEIGHTS")
    return Path(env).expanduser() if env else kling_home() / "weights"


def repo_root() -> Path:
    """The checkout (for datasets/ recipes and reports/ baselines shipped with the code)."""
    return Path(__file__).resolve().parents[1]
