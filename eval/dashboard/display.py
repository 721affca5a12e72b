"""How values appear on the dashboard's pages (every section formats numbers the same way)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def fmt(v: Any) -> str:
    """How numbers appear on the page (tests look for exactly this)."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return "n/a"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    return f"{float(v):.4g}"
