"""Blocking gates on the leaderboard: metrics must order the controls as they must, and must not regress
against the tracked baseline of their benchmark."""

import dagster as dg
from eval.leaderboard.regress import baseline_path, compare_to_baseline, load_tolerances
from eval.leaderboard.store import load_rows, read_any
from kling.paths import Layout
from eval.runs import benchmark_names
from pipelines.defs.curation.resources import CurationSettings
from pipelines.defs.eval.assets import LEADERBOARD_KEY

CONTROLS_ORDERED = "metrics_order_their_controls"
NO_REGRESSION = "no_regression_against_baseline"


@dg.asset_check(asset=LEADERBOARD_KEY, name=CONTROLS_ORDERED, blocking=True)
def controls_ordered(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """Sync-C of ground truth above the shifted-audio control, identity of ground truth above another
    identity, ...: a metric that fails its controls is flagged on the leaderboard and fails this check."""
    from eval.leaderboard.controls import evaluate_controls, violations

    outcomes = evaluate_controls(load_rows(Layout.default().store, latest=True))
    bad = [o.message for o in violations(outcomes)]
    if bad:  # in the run's log too: a CI log shows its tail, not the check's metadata
        context.log.error("controls out of order:\n" + "\n".join(bad))
    return dg.AssetCheckResult(passed=not bad, metadata={
        "violations": dg.MetadataValue.json(bad),
        "passed_rules": len([o for o in outcomes if o.status == "pass"]),
        "skipped_rules": len([o for o in outcomes if o.status == "skipped"]),
    })


@dg.asset_check(asset=LEADERBOARD_KEY, name=NO_REGRESSION, blocking=True)
def no_regression(context: dg.AssetCheckExecutionContext, curation: CurationSettings) -> dg.AssetCheckResult:
    """The CI regression gate: every metric of every system within its tolerance of the tracked baseline
    (reports/baselines/<benchmark>.parquet); a benchmark without a baseline is reported, not failed."""
    layout = Layout.default()
    tolerances = load_tolerances(baseline_path("demo").parent / "tolerances.yaml")
    failures, compared, no_baseline = [], [], []
    for bench in benchmark_names(curation.load()):
        path = baseline_path(bench)
        if not path.exists():
            no_baseline.append(bench)
            continue
        report = compare_to_baseline(load_rows(layout.store, latest=True, benchmark=bench), read_any(path, latest=False), tolerances)
        compared.append(bench)
        if not report.ok:
            failures.append(report.format())
    if failures:  # in the run's log too: a CI log shows its tail, not the check's metadata
        context.log.error("regression against the tracked baseline:\n" + "\n\n".join(failures))
    return dg.AssetCheckResult(passed=not failures, metadata={
        "compared": dg.MetadataValue.json(compared),
        "without_baseline": dg.MetadataValue.json(no_baseline),
        "regressions": dg.MetadataValue.md("\n\n".join(failures) or "none"),
    })
