"""The dashboard's first screen: per benchmark, one row per system with the metrics readers of avatar papers
look for, named in words, the best value of each column in bold, and the controls beneath as reference rows.

HEADLINE is the one place that gives metric ids of the store their names (the gallery labels its per-video
values with it). A column's direction is the rows' own higher_is_better (set by each metric module) and
"best" is the project's rank 1 (eval.leaderboard.aggregate.rank: complete, not a control, not flagged),
never recomputed here.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from eval.dashboard.display import fmt
from eval.leaderboard.aggregate import RANK_GROUP
from eval.leaderboard.controls import control_mask, without_controls

# metric id (as the metric modules write it) -> its name in words; the order is the table's column order.
HEADLINE: dict[str, str] = {
    "sync_c": "Lip sync confidence (Sync-C)",
    "sync_d": "Lip sync distance (Sync-D)",
    "csim": "Identity (CSIM)",
    # no identity-drift figure is written; the worst window's CSIM is the identity along a long video
    "csim_worst_window": "Identity, worst window (CSIM)",
    "lmd": "Mouth landmarks (LMD)",
    "ssim": "SSIM",
    "psnr": "PSNR",
    "fid": "FID",
    "fvd": "FVD",
    "fid_drift_slope": "Appearance drift (FID per minute)",  # eval.temporal.setwise: FID per window, its slope
    "storyline_adherence": "Storyline adherence",
}
VARIANT = RANK_GROUP[1:]  # metric, backbone, backbone_sha256, protocol_version: what one column holds
CSS = """
table.headline td.best{font-weight:bold;background:#e3f4e8}table.headline td.flagged{color:#c00}
table.headline tbody.controls tr{color:#666;background:#fafafa}
table.headline tr.separator th{border-top:3px double #888;background:#fff;font-weight:normal;font-style:italic}
p.folded{color:#666;margin:2px 0}
"""


@dataclass(frozen=True)
class Column:
    """One headline column: a metric as computed by one backbone and protocol version."""

    metric: str
    backbone: str
    backbone_sha256: str
    protocol_version: str
    higher_is_better: bool | None
    several: bool  # the metric has other backbones or protocols here: the name says which one this is

    @property
    def variant(self) -> tuple[str, str, str, str]:
        return self.metric, self.backbone, self.backbone_sha256, self.protocol_version

    @property
    def name(self) -> str:
        arrow = {True: " ↑", False: " ↓"}.get(self.higher_is_better, "")
        return HEADLINE[self.metric] + arrow + (f" [{self.backbone or '-'}]" if self.several else "")

    @property
    def tooltip(self) -> str:
        return f"{self.metric}: backbone {self.backbone or '-'}, protocol {self.protocol_version or '-'}"

    def select(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of `df` (rows or aggregates, one benchmark) that this column holds."""
        variant = df[VARIANT].fillna("")
        return df[(variant == list(self.variant)).all(axis=1)]


def headline_columns(df: pd.DataFrame) -> list[Column]:
    """The headline columns of one benchmark's rows or aggregates, in HEADLINE's order."""
    hits = df[df["metric"].isin(list(HEADLINE))]
    variants = hits[VARIANT].fillna("").drop_duplicates()
    count = variants["metric"].value_counts()
    columns = []
    for variant in variants.itertuples(index=False, name=None):
        column = Column(*variant, higher_is_better=None, several=bool(count[variant[0]] > 1))
        hib = column.select(hits)["higher_is_better"].dropna()
        columns.append(replace(column, higher_is_better=None if hib.empty else bool(hib.iloc[0])))
    order = list(HEADLINE)
    return sorted(columns, key=lambda c: (order.index(c.metric), c.backbone, c.protocol_version))


def _attr(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell(column: Column, hit: pd.DataFrame, system: str, control: bool) -> str:
    where = f'data-system="{_attr(system)}" data-metric="{_attr(column.metric)}" data-backbone="{_attr(column.backbone)}"'
    if hit.empty:
        return f'<td class="num" {where}>–</td>'
    r = hit.iloc[0]
    if r["flagged"]:  # failed its controls: not published, so no number here
        return f'<td class="num flagged" {where} title="not published: {_attr(r["flag_reason"])}">flagged</td>'
    if pd.isna(r["value"]):
        why = f' title="{_attr(r["reason"])}"' if pd.notna(r["reason"]) else ""
        return f'<td class="num warn" {where}{why}>n/a</td>'
    # rank 1 is the best complete value (an incomplete one is unranked); controls are never ranked
    best = not control and pd.notna(r["rank"]) and int(r["rank"]) == 1
    tips = [f"95% CI [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"] if pd.notna(r["ci_low"]) else []
    text = fmt(r["value"])
    if r["status"] != "ok":
        tips.append(str(r["reason"]))
        text += f' <span class="warn">({fmt(r["n_missing"])} missing)</span>'
    title = f' title="{_attr("; ".join(tips))}"' if tips else ""
    return f'<td class="num{" best" if best else ""}" {where}{title}>{text}</td>'


def _row(system: str, columns: list[Column], agg: pd.DataFrame, control: bool) -> str:
    mine = agg[agg["system"] == system]
    cells = "".join(_cell(c, c.select(mine), system, control) for c in columns)
    return f'<tr class="{"control" if control else "system"}"><th>{html.escape(system)}</th>{cells}</tr>'


def _unavailable_everywhere(column: Column, systems: pd.DataFrame) -> str | None:
    """The folded line of a column no system has a value in, else None."""
    hit = column.select(systems)
    if hit["value"].notna().any():
        return None
    reasons = "; ".join(dict.fromkeys(str(x) for x in hit["reason"].dropna())) or "no system was evaluated on it"
    return f"{column.name}: unavailable for every system — {reasons}"


def _benchmark_html(agg: pd.DataFrame) -> str:
    columns = headline_columns(agg)
    systems = without_controls(agg)
    folded = {c: _unavailable_everywhere(c, systems) for c in columns}
    shown = [c for c in columns if folded[c] is None]
    out = []
    if shown:
        head = "".join(f'<th title="{_attr(c.tooltip)}">{html.escape(c.name)}</th>' for c in shown)
        body = "".join(_row(s, shown, agg, False) for s in sorted(set(systems["system"])))
        controls = sorted(set(agg[control_mask(agg["system"])]["system"]))
        reference = "".join(_row(s, shown, agg, True) for s in controls)
        if reference:
            reference = (f'<tbody class="controls"><tr class="separator"><th colspan="{len(shown) + 1}">controls: '
                         f"reference values, never ranked</th></tr>{reference}</tbody>")
        out.append(f'<table class="headline"><thead><tr><th>system</th>{head}</tr></thead>'
                   f"<tbody>{body}</tbody>{reference}</table>")
    else:
        out.append("<p>No headline metric has a value here; every metric is under All metrics.</p>")
    out += [f'<p class="folded">{html.escape(line)}</p>' for line in folded.values() if line]
    return "\n".join(out)


def headline_html(agg: pd.DataFrame) -> str:
    """The first screen over the ranked aggregates (eval.dashboard.build.dashboard_tables)."""
    out = []
    for bench, g in agg.groupby("benchmark", sort=True):
        out.append(f'<h3 data-benchmark="{_attr(bench)}">{html.escape(bench)}</h3>{_benchmark_html(g)}')
    if out:
        out.append("<p class='note'>Mean over cases, best of each column in bold (↑ higher is better, ↓ lower); "
                   "hover a header for its backbone and protocol, a value for its 95% interval.</p>")
    return "\n".join(out) or "<p>No runs in the store.</p>"
