"""Evaluation assets: benchmarks and controls, one run per (benchmark, system), the leaderboard, the dashboard."""

import time

import pandas as pd

import dagster as dg
from eval.leaderboard.schema import RunContext
from kling.paths import Layout
from eval.runs import (
    latest_assertions,
    benchmark_names,
    eval_settings,
    load_prepared,
    prepare_benchmark,
    run_fingerprint,
    stored_run,
    system_names,
)
from pipelines.defs.curation.resources import CurationSettings
from pipelines.defs.eval.partitions import eval_partitions
from pipelines.defs.training.assets import SYNC_EXPERT_KEY

BENCHMARKS_KEY = dg.AssetKey(["eval", "benchmarks"])
CONTROLS_KEY = dg.AssetKey(["eval", "controls"])
RUNS_KEY = dg.AssetKey(["eval", "runs"])
LEADERBOARD_KEY = dg.AssetKey(["eval", "leaderboard"])
DASHBOARD_KEY = dg.AssetKey(["eval", "dashboard"])


@dg.asset(key=BENCHMARKS_KEY, deps=[dg.AssetKey(["curation", "source_videos"])], group_name="eval_prepare", kinds={"yaml"})
def benchmarks(curation: CurationSettings) -> dg.MaterializeResult:
    """The profile's benchmarks: the demo benchmark is built from the demo corpus; others are spec files,
    validated (every problem named with its case and field)."""
    profile = curation.load()
    layout = Layout.default()
    out = {}
    for name in benchmark_names(profile):
        bench = prepare_benchmark(profile, name, layout)
        out[name] = {"cases": len(bench.cases), "spec_hash": bench.spec_hash(), "path": str(bench.path)}
    return dg.MaterializeResult(metadata={"benchmarks": dg.MetadataValue.json(out)})


@dg.asset(key=CONTROLS_KEY, deps=[BENCHMARKS_KEY], group_name="eval_prepare", kinds={"video"})
def controls(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """The control systems evaluated beside every system as sanity bounds: ground truth, ground truth with
    audio shifted 0.5 s, the reference image held still, ground truth of another identity."""
    from eval.control_videos import generate_controls

    profile = curation.load()
    layout = Layout.default()
    meta = {}
    for name in benchmark_names(profile):
        res = generate_controls(load_prepared(profile, name, layout), layout.systems_dir(name))
        meta[name] = {"written": len(res.written), "reused": len(res.reused), "skipped": len(res.skipped)}
        context.log.info(f"controls for {name}: {meta[name]}")
    return dg.MaterializeResult(metadata={"controls": dg.MetadataValue.json(meta)})


@dg.asset(
    key=RUNS_KEY,
    deps=[CONTROLS_KEY, SYNC_EXPERT_KEY],
    partitions_def=eval_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="eval_runs",
    kinds={"parquet"},
)
def runs(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """One evaluation run per (benchmark, system): every metric with every configured backbone, per case,
    in the leaderboard's long schema, written atomically to the run store."""
    from eval.adherence.score import write_assertions_parquet
    from eval.leaderboard.store import write_run
    from eval.suite import evaluate_system
    from eval.systems import load_system

    profile = curation.load()
    layout = Layout.default()
    settings = eval_settings(profile, layout)
    summary = {}
    for key in context.partition_keys:
        dims = key.keys_by_dimension if hasattr(key, "keys_by_dimension") else dict(zip(["benchmark", "system"], key.split("|")))
        bench_name, system_name = dims["benchmark"], dims["system"]
        if system_name not in system_names(layout, bench_name):
            summary[key] = "no such system for this benchmark"
            continue
        start = time.perf_counter()
        bench = load_prepared(profile, bench_name, layout)
        system_dir = layout.systems_dir(bench_name) / system_name
        fingerprint = run_fingerprint(bench, system_dir, settings)
        previous = stored_run(layout, bench_name, system_name, fingerprint)
        if previous is not None:
            summary[key] = {"unchanged": str(previous)}
            context.log.info(f"{key}: inputs unchanged since {previous.name}, not re-evaluated")
            continue
        ctx = RunContext.new(system_name, bench_name, settings.hash, checkpoint=settings.sync_expert_dir or "")
        result = evaluate_system(bench, load_system(system_dir), settings, ctx, progress=lambda c: context.log.info(f"{key}: {c}"))
        path = write_run(result.rows, layout.store, {"settings": settings, "spec_hash": bench.spec_hash(), "fingerprint": fingerprint})
        write_assertions_parquet(result.adherence, layout.assertions_path(path),
                                 metadata={"run_id": ctx.run_id, "system": system_name, "benchmark": bench_name})
        df = result.rows.to_pandas()
        summary[key] = {"rows": len(df), "unavailable": int((df["status"] == "unavailable").sum()),
                        "seconds": round(time.perf_counter() - start, 1), "file": str(path)}
    return dg.MaterializeResult(metadata={"runs": dg.MetadataValue.json(summary), "config_hash": settings.hash})


def leaderboard_frame(layout: Layout) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """(latest rows, ranked aggregates with controls-flagged metrics marked, control outcomes)."""
    from eval.leaderboard.aggregate import aggregate, rank
    from eval.leaderboard.controls import evaluate_controls, flagged_metrics, mark_flagged
    from eval.leaderboard.store import load_rows

    rows = load_rows(layout.store, latest=True)
    outcomes = evaluate_controls(rows)
    violations = [o for o in outcomes if o.status in ("fail", "missing")]
    agg = mark_flagged(aggregate(rows), violations)
    return rows, rank(agg, flagged_metrics(violations)), outcomes


@dg.asset(key=LEADERBOARD_KEY, deps=[RUNS_KEY], group_name="eval_report", kinds={"parquet", "duckdb"})
def leaderboard(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Aggregates per system and benchmark with bootstrap intervals over cases, ranked only among rows that
    share backbone and protocol version; metrics that fail their controls are flagged, not ranked."""
    from kling.atomic import write_parquet_atomic

    layout = Layout.default()
    rows, agg, outcomes = leaderboard_frame(layout)
    path = write_parquet_atomic(agg, layout.reports / "leaderboard.parquet", {"runs": sorted(rows["run_id"].unique())})
    failed = [o.message for o in outcomes if o.status in ("fail", "missing")]
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "rows": len(rows),
        "aggregates": len(agg),
        "systems": dg.MetadataValue.json(sorted(rows["system"].unique())),
        "control_failures": dg.MetadataValue.json(failed),
        "dagster/row_count": len(agg),
    })


@dg.asset(key=DASHBOARD_KEY, deps=[LEADERBOARD_KEY], group_name="eval_report", kinds={"html"})
def dashboard() -> dg.MaterializeResult:
    """The static, self-contained HTML dashboard (opens offline in any browser)."""
    from eval.dashboard import build_dashboard

    layout = Layout.default()
    path = build_dashboard(layout.store, layout.reports / "dashboard.html", assertions=latest_assertions(layout))
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path))})
