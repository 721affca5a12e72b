"""A static, self-contained HTML dashboard over the leaderboard store.

The store is read through DuckDB (eval.leaderboard.store), aggregated with bootstrap intervals, checked
against the controls, ranked; the page leads with the headline table (eval.dashboard.headline), then the
gallery of the systems' videos (eval.dashboard.gallery), every metric as HTML tables (readable without
JavaScript), flagged metrics, the controls apart, one Vega-Lite chart per metric, drift along the video and
across runs, and a per-case drill-down with failed assertions. Vega, Vega-Lite and vega-embed are inlined from
vl-convert's bundle, so the page opens offline from a file:// URL.
"""

from __future__ import annotations

import functools
import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from eval.dashboard import charts, gallery
from eval.dashboard.display import fmt
from eval.dashboard.headline import CSS as HEADLINE_CSS, headline_html
from eval.leaderboard.aggregate import RANK_GROUP, aggregate, rank_table
from eval.leaderboard.controls import control_mask, without_controls
from eval.leaderboard.schema import AGGREGATE, WHOLE
from eval.leaderboard.store import default_root, load_rows
from kling.atomic import atomic_write_bytes
from kling.paths import Layout

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px}
th{background:#f2f2f2;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ci{color:#666}.rank{font-weight:bold;color:#1a5}.warn{color:#b50}.fail{color:#c00;font-weight:bold}
.pass{color:#1a5}.chart{margin:12px 0}nav a{margin-right:12px}details{margin:6px 0}
""" + HEADLINE_CSS + gallery.CSS


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one script (assigns window.vegaEmbed); no network needed."""
    import vl_convert

    return vl_convert.javascript_bundle().replace("</script", "<\\/script")


def metric_label(r: Any) -> str:
    return f"{r['metric']} ({r['backbone'] or '-'}, {r['protocol_version'] or '-'})"


def dashboard_tables(rows: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Ranked aggregates with `flagged`, and every control outcome."""
    agg, outcomes = rank_table(rows)
    agg["label"] = agg.apply(metric_label, axis=1) if len(agg) else []
    return agg, outcomes


def _cell(r: Any) -> str:
    parts = [f'<span class="v">{fmt(r["value"])}</span>']
    if pd.notna(r["ci_low"]):
        parts.append(f'<span class="ci">[{fmt(r["ci_low"])}, {fmt(r["ci_high"])}]</span>')
    if pd.notna(r["rank"]):
        parts.append(f'<span class="rank">#{int(r["rank"])}/{int(r["rank_of"])}</span>')
    if r["status"] != "ok":
        parts.append(f'<span class="warn" title="{html.escape(str(r["reason"]))}">{html.escape(r["status"])}: '
                     f'{fmt(r["n_missing"])} missing</span>')
    return " ".join(parts)


def _pivot_table(agg: pd.DataFrame, cls: str) -> str:
    labels = list(dict.fromkeys(agg.sort_values(["metric", "label"])["label"]))
    systems = sorted(set(agg["system"]))
    head = "".join(f"<th>{html.escape(m)}</th>" for m in labels)
    body = []
    for s in systems:
        cells = []
        for m in labels:
            hit = agg[(agg["system"] == s) & (agg["label"] == m)]
            cells.append(f'<td class="num" data-system="{html.escape(s)}" data-metric="{html.escape(m)}">'
                         + (_cell(hit.iloc[0]) if len(hit) else "") + "</td>")
        body.append(f"<tr><th>{html.escape(s)}</th>{''.join(cells)}</tr>")
    return f'<table class="{cls}"><tr><th>system</th>{head}</tr>{"".join(body)}</table>'


def _all_metrics_html(agg: pd.DataFrame) -> str:
    out = []
    for bench, g in agg.groupby("benchmark", sort=True):
        pub = without_controls(g[~g["flagged"].astype(bool)])
        out.append(f'<h3 data-benchmark="{html.escape(bench)}">{html.escape(bench)}</h3>')
        out.append(_pivot_table(pub, "leaderboard") if len(pub) else "<p>No published metric.</p>")
        out.append("<p class='note'>Mean over cases [95% bootstrap interval] #rank/of; ranks only among rows "
                   "sharing benchmark, metric, backbone and protocol version.</p>")
    return "\n".join(out) or "<p>No runs in the store.</p>"


def _controls_html(agg: pd.DataFrame, outcomes: list) -> str:
    ctl = agg[control_mask(agg["system"])]
    out = []
    for bench, g in ctl.groupby("benchmark", sort=True):
        out.append(f"<h3>{html.escape(bench)}</h3>" + _pivot_table(g, "controls"))
    rows = "".join(
        f"<tr><td>{html.escape(o.benchmark)}</td><td>{html.escape(o.metric)}</td><td>{html.escape(o.better)} "
        f"{'&gt;' if o.direction == 'higher' else '&lt;'} {html.escape(o.worse)}</td><td class='num'>{fmt(o.better_value)}</td>"
        f"<td class='num'>{fmt(o.worse_value)}</td><td class='{'pass' if o.status == 'pass' else 'fail' if o.status != 'skipped' else ''}'>"
        f"{o.status}</td><td>{html.escape(o.why)}</td></tr>" for o in outcomes)
    out.append("<h3>Control checks</h3><table class='control-checks'><tr><th>benchmark</th><th>metric</th>"
               f"<th>must hold</th><th>left</th><th>right</th><th>status</th><th>why</th></tr>{rows}</table>")
    return "\n".join(out)


def _flagged_html(agg: pd.DataFrame) -> str:
    f = agg[agg["flagged"]].drop_duplicates(RANK_GROUP)
    if f.empty:
        return "<p>Every metric with control rules orders its controls as it must.</p>"
    items = "".join(f"<li><b>{html.escape(r['label'])}</b> on {html.escape(r['benchmark'])}: "
                    f"{html.escape(str(r['flag_reason']))}</li>" for _, r in f.iterrows())
    return f"<p class='fail'>Not published (failed their controls):</p><ul class='flagged'>{items}</ul>"


def _cases_html(rows: pd.DataFrame, assertions: pd.DataFrame | None) -> str:
    clips = rows[(rows["clip_id"] != AGGREGATE) & (rows["window"].fillna(WHOLE) == WHOLE)]
    out = []
    for (bench, system), g in clips.groupby(["benchmark", "system"], sort=True):
        metrics = sorted(set(g["metric"]))
        problems_n = int((g["status"].fillna("ok") != "ok").sum() + g["value"].isna().sum())
        body = []
        for cid, c in g.groupby("clip_id", sort=True):
            cells, notes = [], []
            for m in metrics:
                hit = c[c["metric"] == m]
                v = hit["value"].iloc[0] if len(hit) else None
                cells.append(f"<td class='num'>{fmt(v) if len(hit) else ''}</td>")
                for _, h in hit[hit["reason"].notna()].iterrows():
                    notes.append(f"{m}: {h['reason']}")
            if assertions is not None and len(assertions):
                a = assertions[(assertions["system"] == system) & (assertions["clip_id"] == cid)]
                if "benchmark" in a:
                    a = a[a["benchmark"].isna() | (a["benchmark"] == bench)]
                for _, x in a[a["status"] != "satisfied"].iterrows():
                    notes.append(f"assertion {x.get('assertion_id', '')} {x.get('text', '')}: {x['status']}"
                                 + (f" ({x['reason']})" if pd.notna(x.get("reason")) else ""))
            body.append(f"<tr><th>{html.escape(cid)}</th>{''.join(cells)}<td class='warn'>"
                        f"{'<br>'.join(html.escape(n) for n in notes)}</td></tr>")
        head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
        out.append(f"<details data-system='{html.escape(system)}'><summary>{html.escape(bench)} · {html.escape(system)}: "
                   f"{g['clip_id'].nunique()} cases, {problems_n} problem value(s)</summary>"
                   f"<table class='cases'><tr><th>case</th>{head}<th>problems / failed assertions</th></tr>"
                   f"{''.join(body)}</table></details>")
    return "\n".join(out) or "<p>No per-case rows.</p>"


def _history(all_rows: pd.DataFrame) -> pd.DataFrame:
    agg = aggregate(all_rows)
    if agg.empty or agg["run_id"].nunique() < 2:
        return agg.iloc[0:0]
    return agg[agg["value"].notna()]


def render_html(rows: pd.DataFrame, all_rows: pd.DataFrame | None = None, assertions: pd.DataFrame | None = None,
                title: str = "Avatar leaderboard", layout: Layout | None = None, html_dir: Path = Path(".")) -> str:
    """The page; `layout` (its systems, benchmark and storyline folders) feeds the gallery, whose video paths
    are relative to `html_dir`, the folder the page is written to."""
    agg, outcomes = dashboard_tables(rows)
    specs: list[tuple[str, str, dict]] = []  # (section, element id, vega-lite spec)
    shown = agg[agg["value"].notna() & ~agg["flagged"]]
    for i, (label, g) in enumerate(shown.groupby("label", sort=True)):
        specs.append(("charts", f"chart-metric-{i}", charts.metric_chart(g, label)))
    drift = charts.drift_frame(rows)
    for i, m in enumerate(sorted(set(drift["metric"])) if len(drift) else []):
        specs.append(("drift", f"chart-drift-{i}", charts.drift_chart(drift, m)))
    hist = _history(all_rows if all_rows is not None else rows)
    for i, m in enumerate(sorted(set(hist["metric"])) if len(hist) else []):
        specs.append(("history", f"chart-history-{i}", charts.history_chart(hist, m)))

    def divs(section: str) -> str:
        ids = [i for s, i, _ in specs if s == section]
        return "".join(f'<div class="chart" id="{i}"></div>' for i in ids) or "<p>No data for these charts.</p>"

    payload = json.dumps({i: spec for _, i, spec in specs}, separators=(",", ":")).replace("</", "<\\/")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    runs = rows["run_id"].nunique() if len(rows) else 0
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style>
<script type="text/javascript">{vega_bundle()}</script></head><body>
<h1>{html.escape(title)}</h1>
<p>Built {now} from {runs} run(s) (latest per system and benchmark).</p>
<nav><a href="#leaderboard">Leaderboard</a><a href="#gallery">Gallery</a><a href="#all-metrics">All metrics</a>
<a href="#flagged">Flagged</a><a href="#controls">Controls</a><a href="#charts">Charts</a><a href="#drift">Drift</a>
<a href="#history">History</a><a href="#cases">Cases</a></nav>
<section id="leaderboard"><h2>Leaderboard</h2>{headline_html(agg)}</section>
<section id="gallery"><h2>Gallery</h2>{gallery.gallery_html(rows, agg, layout, html_dir)}</section>
<section id="all-metrics"><h2>All metrics</h2>{_all_metrics_html(agg)}</section>
<section id="flagged"><h2>Flagged metrics</h2>{_flagged_html(agg)}</section>
<section id="controls"><h2>Controls (sanity bounds, never ranked)</h2>{_controls_html(agg, outcomes)}</section>
<section id="charts"><h2>One chart per metric</h2>{divs("charts")}</section>
<section id="drift"><h2>Drift along the video</h2>{divs("drift")}</section>
<section id="history"><h2>Across runs</h2>{divs("history")}</section>
<section id="cases"><h2>Per-case drill-down</h2>{_cases_html(rows, assertions)}</section>
<script type="text/javascript">
const SPECS = {payload};
window.dashboardRendered = Promise.all(Object.entries(SPECS).map(([id, spec]) =>
  vegaEmbed("#" + id, spec, {{renderer: "svg", actions: false}})
    .then(() => document.getElementById(id).setAttribute("data-rendered", "1"))
    .catch(err => console.error("chart " + id + ": " + err))));
</script></body></html>
"""


def build_dashboard(source: str | Path | pd.DataFrame | None = None, out_path: str | Path | None = None,
                    assertions: pd.DataFrame | str | Path | None = None, title: str = "Avatar leaderboard",
                    layout: Layout | None = None) -> Path:
    """Write the dashboard for a store folder (default: the user's store) or rows; returns the HTML path.

    `layout`: the data folders whose systems' videos the gallery shows; by default the user's when the
    store is the user's too, else none (a store alone has no videos)."""
    if layout is None and source is None:
        layout = Layout.default()
    if isinstance(source, pd.DataFrame):
        rows, all_rows = source, source
        out_path = Path(out_path or default_root() / "dashboard.html")
    else:
        root = Path(source or default_root())
        rows, all_rows = load_rows(root, latest=True), load_rows(root, latest=False)
        out_path = Path(out_path or root / "dashboard.html")
    if isinstance(assertions, (str, Path)):
        assertions = pd.read_parquet(assertions)
    page = render_html(rows, all_rows, assertions, title, layout, out_path.parent)
    atomic_write_bytes(out_path, page.encode("utf-8"))
    return out_path
