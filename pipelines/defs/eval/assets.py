"""Evaluation assets: benchmarks and controls, one run per (benchmark, system), the leaderboard, the dashboard."""

import dagster as dg
from eval.runs import (
    benchmark_names,
    eval_settings,
    load_prepared,
    prepare_benchmark,
    run_system,
    write_dashboard,
    write_leaderboard,
)
from kling.paths import Layout
from pipelines.defs.curation.resources import CurationSettings
from pipelines.defs.director.assets import STORYLINES_KEY
from pipelines.defs.eval.partitions import eval_partitions, register_systems, split_eval_key
from pipelines.defs.generation.assets import AVATAR_SYSTEM_KEY
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
    audio shifted 0.5 s, the reference image held still, ground truth of another identity. Every system
    folder (controls and imported systems) is then registered as a `systems` partition of eval/runs."""
    from eval.control_videos import generate_controls

    profile = curation.load()
    layout = Layout.default()
    meta = {}
    for name in benchmark_names(profile):
        res = generate_controls(load_prepared(profile, name, layout), layout.systems_dir(name))
        meta[name] = {"written": len(res.written), "reused": len(res.reused), "skipped": len(res.skipped)}
        context.log.info(f"controls for {name}: {meta[name]}")
    added = register_systems(context.instance, layout, benchmark_names(profile))
    return dg.MaterializeResult(metadata={"controls": dg.MetadataValue.json(meta), "systems_added": dg.MetadataValue.json(added)})


@dg.asset(
    key=RUNS_KEY,
    # storylines: each case's storyline adherence; the avatar system: the model's videos are one of the systems
    deps=[CONTROLS_KEY, SYNC_EXPERT_KEY, STORYLINES_KEY, AVATAR_SYSTEM_KEY],
    partitions_def=eval_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="eval_runs",
    kinds={"parquet"},
)
def runs(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """One evaluation run per (benchmark, system): every metric with every configured backbone, per case
    (adherence to the case's instruction and to the director's storyline of it included), in the
    leaderboard's long schema, written atomically to the run store; an unchanged run is kept."""
    profile, layout = curation.load(), Layout.default()
    settings = eval_settings(profile, layout)
    summary = {}
    for key in context.partition_keys:
        bench, system = split_eval_key(key)
        outcome = run_system(profile, layout, bench, system, settings, progress=lambda c: context.log.info(f"{key}: {c}"))
        context.log.info(f"{key}: {outcome.status}{f' ({outcome.path.name})' if outcome.path else ''}")
        summary[key] = outcome.summary()
    return dg.MaterializeResult(metadata={"runs": dg.MetadataValue.json(summary), "config_hash": settings.hash})


@dg.asset(key=LEADERBOARD_KEY, deps=[RUNS_KEY], group_name="eval_report", kinds={"parquet", "duckdb"})
def leaderboard() -> dg.MaterializeResult:
    """Aggregates per system and benchmark with bootstrap intervals over cases, ranked only among rows that
    share backbone and protocol version; metrics that fail their controls are flagged, not ranked."""
    from eval.leaderboard.controls import violations

    out = write_leaderboard(Layout.default())
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(out.path)),
        "rows": len(out.rows),
        "aggregates": len(out.table),
        "systems": dg.MetadataValue.json(sorted(out.rows["system"].unique())),
        "control_failures": dg.MetadataValue.json([o.message for o in violations(out.outcomes)]),
        "dagster/row_count": len(out.table),
    })


@dg.asset(key=DASHBOARD_KEY, deps=[LEADERBOARD_KEY], group_name="eval_report", kinds={"html"})
def dashboard() -> dg.MaterializeResult:
    """The static, self-contained HTML dashboard (opens offline in any browser)."""
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(write_dashboard(Layout.default())))})
