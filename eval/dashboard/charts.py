"""Vega-Lite specs (built with Altair) for the dashboard: one chart per metric with intervals, drift of a
metric along the video (per time window), and history across runs. Data is inlined as plain values, so
the page needs no server and no network."""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from eval.leaderboard.controls import control_mask
from eval.leaderboard.schema import AGGREGATE, WHOLE

_WINDOW = re.compile(r"^\s*(-?[0-9.]+)\s*-\s*(-?[0-9.]+)\s*s?\s*$")
WIDTH = 520


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    df = df.replace({np.nan: None})
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in df.to_dict("records")]


def metric_chart(agg: pd.DataFrame, metric_label: str) -> dict[str, Any]:
    """Points with bootstrap-interval bars per benchmark and system; controls in their own colour."""
    d = agg.assign(row=agg["benchmark"] + " · " + agg["system"],
                   kind=np.where(control_mask(agg["system"]), "control", "system"))
    data = alt.Data(values=_records(d[["row", "kind", "value", "ci_low", "ci_high", "n", "system", "benchmark"]]))
    base = alt.Chart(data).encode(y=alt.Y("row:N", title=None, sort=None))
    bars = base.mark_rule().encode(x=alt.X("ci_low:Q", title=metric_label, scale=alt.Scale(zero=False)), x2="ci_high:Q",
                                   color=alt.Color("kind:N", legend=alt.Legend(title=None)))
    points = base.mark_point(filled=True, size=60).encode(
        x="value:Q", color="kind:N",
        tooltip=["benchmark:N", "system:N", alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("ci_low:Q", format=".4g"),
                 alt.Tooltip("ci_high:Q", format=".4g"), "n:Q"])
    return (bars + points).properties(width=WIDTH, title=metric_label).to_dict()


def window_start(label: str) -> float | None:
    m = _WINDOW.match(str(label))
    return float(m.group(1)) if m else None


def drift_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over cases of each metric per (benchmark, system, window start) from per-window clip rows."""
    w = rows[(rows["window"].fillna(WHOLE) != WHOLE) & (rows["clip_id"] != AGGREGATE) & rows["value"].notna()
             & (rows["status"].fillna("ok") == "ok")
             & ~rows["metric"].str.contains("worst", na=False)].copy()  # a worst window is one point, not a curve
    if w.empty:
        return w
    w["t"] = w["window"].map(window_start)
    w = w[w["t"].notna()]
    return (w.groupby(["benchmark", "system", "metric", "t"], as_index=False)
             .agg(value=("value", "mean"), n=("value", "size")).sort_values(["metric", "system", "t"]))


def drift_chart(drift: pd.DataFrame, metric: str) -> dict[str, Any]:
    d = drift[drift["metric"] == metric].assign(series=lambda x: x["benchmark"] + " · " + x["system"])
    chart = alt.Chart(alt.Data(values=_records(d))).mark_line(point=True).encode(
        x=alt.X("t:Q", title="window start (s)"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None), tooltip=["series:N", "t:Q", alt.Tooltip("value:Q", format=".4g"), "n:Q"])
    return chart.properties(width=WIDTH, title=f"{metric} along the video").to_dict()


def history_chart(history: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Aggregate value of `metric` per run over time (created_at), per benchmark and system."""
    d = history[history["metric"] == metric].assign(series=lambda x: x["benchmark"] + " · " + x["system"])
    chart = alt.Chart(alt.Data(values=_records(d[["series", "created_at", "value", "run_id"]]))).mark_line(point=True).encode(
        x=alt.X("created_at:T", title="run time"), y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None), tooltip=["series:N", "run_id:N", alt.Tooltip("value:Q", format=".4g")])
    return chart.properties(width=WIDTH, title=f"{metric} across runs").to_dict()
