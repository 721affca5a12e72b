"""The CI regression gate: per-metric tolerance and direction, explicit baseline updates."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from eval.leaderboard import store
from eval.leaderboard.regress import (Tolerance, Tolerances, compare_to_baseline, load_tolerances,
                                      update_baseline)
from eval.leaderboard.synthetic import system_rows
from kling.atomic import read_parquet_metadata
from kling.cli.leaderboard import register
from kling.paths import repo_root

CASES = [f"c{i}" for i in range(5)]
TOL = Tolerances(Tolerance(abs=1e-6, rel=0.0), {"sync_c": Tolerance(abs=0.1), "sync_d": Tolerance(abs=0.1)})


def run(sync_c=7.0, sync_d=6.0, csim=0.8, **kw):
    return system_rows("ours", {"sync_c": sync_c, "sync_d": sync_d, "csim": csim}, CASES, noise=0, **kw)


def test_within_tolerance_passes_and_improvement_is_not_a_failure():
    rep = compare_to_baseline(run(sync_c=6.95), run(), TOL)
    assert rep.ok and {c.status for c in rep.comparisons} == {"ok"}
    rep = compare_to_baseline(run(sync_c=8.0, sync_d=5.0), run(), TOL)
    assert rep.ok and {c.metric: c.status for c in rep.comparisons}["sync_c"] == "improved"


def test_every_regression_is_named_with_old_new_and_tolerance():
    rep = compare_to_baseline(run(sync_c=6.5, sync_d=6.5, csim=0.79), run(), TOL)
    assert not rep.ok
    failed = {c.metric: c for c in rep.failures}
    assert set(failed) == {"sync_c", "sync_d", "csim"}
    assert failed["sync_d"].direction == "lower"  # from higher_is_better
    text = rep.format()
    assert "sync_c [ours / demo]: old 7 -> new 6.5, moved -0.5 (tolerance 0.1, higher is better)" in text
    assert "sync_d [ours / demo]: old 6 -> new 6.5, moved +0.5 (tolerance 0.1, lower is better)" in text
    assert "csim" in text and text.strip().splitlines()[-1].startswith("REGRESSION")


def test_relative_tolerance_and_direction_override():
    tol = Tolerances(Tolerance(rel=0.1), {"csim": Tolerance(abs=0.0, direction="either")})
    rep = compare_to_baseline(run(sync_c=6.4, csim=0.81), run(), tol)  # 7 -> 6.4 within 10%, csim moved up
    assert [c.metric for c in rep.failures] == ["csim"]


def test_missing_incomplete_and_incomparable_fail_new_metrics_do_not():
    base = run()
    cur = system_rows("ours", {"sync_c": 7.0, "fvd": 100.0}, CASES, noise=0)
    rep = compare_to_baseline(cur, base, TOL)
    st = {c.metric: c.status for c in rep.comparisons}
    assert st["sync_d"] == "missing" and st["csim"] == "missing" and st["fvd"] == "new"
    rep = compare_to_baseline(run(missing=["c2"]), base, TOL)
    assert {c.metric for c in rep.failures} == {"sync_c", "sync_d", "csim"}
    assert "c2" in rep.failures[0].detail
    base = system_rows("ours", {"sync_c": 7.0}, CASES, noise=0)
    other = system_rows("ours", {"sync_c": 7.0}, CASES, noise=0, metrics={"sync_c": (True, "syncnet_v2", "f" * 64, "sync_cd/2")})
    rep = compare_to_baseline(other, base, TOL)
    assert rep.failures[0].status == "incomparable" and "update the baseline" in rep.failures[0].detail
    renamed = system_rows("ours", {"sync_c": 7.0}, CASES, noise=0, metrics={"sync_c": (True, "expert", "a" * 64, "sync_cd/1")})
    assert {c.status for c in compare_to_baseline(renamed, base, TOL).comparisons} == {"missing", "new"}
    both = pa.concat_tables([base, renamed])  # one metric from two backbones: compared separately
    assert compare_to_baseline(both, both, TOL).ok and len(compare_to_baseline(both, both, TOL).comparisons) == 2


def test_tolerance_file(tmp_path):
    tracked = load_tolerances(repo_root() / "reports" / "baselines" / "tolerances.yaml")
    assert tracked.for_metric("sync_c").abs > 0 and tracked.for_metric("output_ok").direction == "higher"
    assert load_tolerances(None).default.rel > 0
    bad = tmp_path / "t.yaml"
    bad.write_text("metrics:\n  sync_c: {abs: -1}\n")
    with pytest.raises(ValueError, match="sync_c"):
        load_tolerances(bad)
    bad.write_text("metrics:\n  sync_c: {direction: up}\n")
    with pytest.raises(ValueError, match="direction"):
        load_tolerances(bad)


def test_update_baseline_records_why(tmp_path):
    path = tmp_path / "baselines" / "demo.parquet"
    with pytest.raises(ValueError, match="reason"):
        update_baseline(run(), path, "  ")
    update_baseline(run(), path, "first baseline")
    update_baseline(run(sync_c=7.5), path, "sync expert retrained")
    meta = read_parquet_metadata(path)["baseline"]
    assert meta["reason"] == "sync expert retrained" and meta["previous_updated_at"] and meta["runs"] == ["run-ours"]
    hist = [json.loads(line) for line in (path.parent / "history.jsonl").read_text().splitlines()]
    assert [h["reason"] for h in hist] == ["first baseline", "sync expert retrained"]
    assert compare_to_baseline(run(sync_c=7.5), store.read_any(path), TOL).ok
    assert not compare_to_baseline(run(sync_c=7.0), store.read_any(path), TOL).ok


def test_cli_regress_exit_codes_and_baseline_update(tmp_path):
    app = typer.Typer()
    register(app)
    cli = CliRunner()
    root = tmp_path / "store"
    store.write_run(run(), root)
    base = tmp_path / "baselines" / "demo.parquet"
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "tolerances.yaml").write_text("default: {abs: 0.01}\n")
    r = cli.invoke(app, ["baseline", "update", "--benchmark", "demo", "--reason", "initial", "--current", str(root), "--out", str(base)])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["regress", "--baseline", str(base), "--current", str(root)])
    assert r.exit_code == 0 and "no regression" in r.output
    store.write_run(run(sync_c=6.0, run_id="r2", created_at="2026-12-01T00:00:00+00:00"), root)
    r = cli.invoke(app, ["regress", "--baseline", str(base), "--current", str(root)])
    assert r.exit_code == 1 and "sync_c [ours / demo]: old 7 -> new 6, moved -1 (tolerance 0.01" in r.output
    r = cli.invoke(app, ["regress", "--baseline", str(tmp_path / "none.parquet")])
    assert r.exit_code == 2 and "baseline update" in r.output


def test_a_backbone_can_have_its_own_tolerance(tmp_path):
    """The self-trained expert's numbers follow the CPU it trained on (benchmarks/bench_cpu_spread.py): its
    sync_c gets a wider tolerance than the official SyncNet's, which stays tight."""
    f = tmp_path / "tol.yaml"
    f.write_text("default: {abs: 1.0e-6}\nmetrics:\n  sync_c: {abs: 0.1}\n"
                 "backbones:\n  syncnet-expert-demo:\n    sync_c: {abs: 0.05, rel: 0.3}\n")
    tol = load_tolerances(f)
    assert tol.for_metric("sync_c", "syncnet-expert-demo").allowed(0.74) == pytest.approx(0.222)
    assert tol.for_metric("sync_c", "syncnet_v2").allowed(0.74) == pytest.approx(0.1)
    assert tol.for_metric("sync_d", "syncnet-expert-demo").allowed(9.0) == pytest.approx(1e-6)
    base = system_rows("ours", {"sync_c": 0.74}, CASES, noise=0, metrics={"sync_c": (True, "syncnet-expert-demo", "recipe:" + "a" * 64, "sync_cd_expert/1")})
    moved = system_rows("ours", {"sync_c": 0.89}, CASES, noise=0, metrics={"sync_c": (True, "syncnet-expert-demo", "recipe:" + "a" * 64, "sync_cd_expert/1")})
    assert compare_to_baseline(moved, base, tol).ok  # +0.15: another CPU's spread
    far = system_rows("ours", {"sync_c": 0.40}, CASES, noise=0, metrics={"sync_c": (True, "syncnet-expert-demo", "recipe:" + "a" * 64, "sync_cd_expert/1")})
    rep = compare_to_baseline(far, base, tol)
    assert not rep.ok and "moved -0.34" in rep.format()
    f.write_text("backbones:\n  x:\n    sync_c: {abs: -1}\n")
    with pytest.raises(ValueError, match="backbones.x.sync_c"):
        load_tolerances(f)


def test_an_offset_is_compared_only_where_the_baseline_is_confident(tmp_path):
    """A still face's AV offset is the argmin of a flat curve: it jumped from -6.7 to -15 frames between two
    clean demo runs while nothing else moved past its tolerance. `defined_when` leaves it out, by the
    baseline's own Sync-C, and still compares a confident system's offset."""
    f = tmp_path / "tol.yaml"
    f.write_text("metrics:\n  sync_av_offset: {abs: 1, direction: either, defined_when: {sync_c: 0.5}}\n")
    tol = load_tolerances(f)
    still = lambda off: system_rows("still", {"sync_c": 0.05, "sync_av_offset": off}, CASES, noise=0)  # noqa: E731
    rep = compare_to_baseline(still(-15.0), still(-6.7), tol)
    offset = next(c for c in rep.comparisons if c.metric == "sync_av_offset")
    assert rep.ok and offset.status == "undefined" and "sync_c 0.05 < 0.5" in offset.detail
    confident = lambda off: system_rows("gt", {"sync_c": 0.8, "sync_av_offset": off}, CASES, noise=0)  # noqa: E731
    rep = compare_to_baseline(confident(-3.0), confident(0.0), tol)
    assert not rep.ok and "sync_av_offset [gt / demo]" in rep.format()
    f.write_text("metrics:\n  sync_av_offset: {defined_when: {sync_c: high}}\n")
    with pytest.raises(ValueError, match="defined_when"):
        load_tolerances(f)


def test_a_mean_over_too_few_cases_is_not_compared(tmp_path):
    """A generated system that kept a face in one case of nine has a mouth-adherence "mean" over that case; on
    another CPU its model keeps none and the number vanishes (bench_cpu_spread, avx2). `min_cases` leaves such
    a value out, by the baseline's own case count, and still compares one that rests on enough cases."""
    f = tmp_path / "tol.yaml"
    f.write_text("systems:\n  ours:\n    '*': {abs: 0.05, min_cases: 3}\n")
    tol = load_tolerances(f)
    spec = {"adherence": (True, "measured:dlib", "d" * 64, "adherence/1")}
    adherence_on = lambda cases: system_rows("ours", {"adherence": 0.0}, cases, noise=0, metrics=spec)  # noqa: E731
    faceless = system_rows("ours", {"csim": 0.8}, CASES, noise=0)
    rep = compare_to_baseline(faceless, adherence_on(CASES[:1]), tol)
    adherence = next(c for c in rep.comparisons if c.metric == "adherence")
    assert rep.ok and adherence.status == "undefined" and "rests on 1 case(s) (< 3)" in adherence.detail
    rep = compare_to_baseline(faceless, adherence_on(CASES), tol)
    assert not rep.ok and "adherence [ours / demo]: missing" in rep.format()
    f.write_text("metrics:\n  adherence: {min_cases: 2.5}\n")
    with pytest.raises(ValueError, match="min_cases"):
        load_tolerances(f)


def test_a_system_can_have_its_own_tolerance(tmp_path):
    """A model trained on the machine that runs the demo generates other videos on another CPU: every metric of
    that system gets its measured spread ("*"), one metric may be set apart, other systems stay tight."""
    f = tmp_path / "tol.yaml"
    f.write_text("default: {abs: 1.0e-6}\nmetrics:\n  sync_c: {abs: 0.1}\n"
                 "systems:\n  gen:\n    '*': {rel: 0.2}\n    csim: {abs: 0.5}\n")
    tol = load_tolerances(f)
    assert tol.for_metric("sync_c", None, "gen").allowed(1.0) == pytest.approx(0.2)
    assert tol.for_metric("csim", None, "gen").allowed(0.8) == pytest.approx(0.5)
    assert tol.for_metric("sync_c", None, "ours").allowed(1.0) == pytest.approx(0.1)
    base = system_rows("gen", {"sync_c": 1.0, "csim": 0.8}, CASES, noise=0)
    moved = system_rows("gen", {"sync_c": 0.85, "csim": 0.4}, CASES, noise=0)
    assert compare_to_baseline(moved, base, tol).ok
    far = system_rows("gen", {"sync_c": 0.7, "csim": 0.8}, CASES, noise=0)
    assert not compare_to_baseline(far, base, tol).ok
    f.write_text("systems:\n  gen:\n    '*': {rel: -1}\n")
    with pytest.raises(ValueError, match="systems.gen"):
        load_tolerances(f)


def test_a_benchmark_can_have_its_own_tolerance(tmp_path):
    """Two one-minute cases are not nine short ones: a benchmark's own section (here: means over 2 cases count,
    csim held to its measured spread) overrides every other section for that benchmark only."""
    import pyarrow as pa

    f = tmp_path / "tol.yaml"
    f.write_text("metrics:\n  csim: {abs: 0.01}\nsystems:\n  gen:\n    '*': {abs: 0.05, min_cases: 3}\n"
                 "benchmarks:\n  long:\n    systems:\n      gen:\n        '*': {abs: 0.02, min_cases: 2}\n")
    tol = load_tolerances(f)
    assert tol.for_metric("csim", None, "gen", "long") == Tolerance(abs=0.02, min_cases=2)
    assert tol.for_metric("csim", None, "gen", "demo") == Tolerance(abs=0.05, min_cases=3)
    assert tol.for_metric("csim", None, "still", "long") == Tolerance(abs=0.01)  # falls through to `metrics`
    two = CASES[:2]
    rows = lambda csim: pa.concat_tables([system_rows("gen", {"csim": csim}, two, benchmark=b, noise=0)  # noqa: E731
                                          for b in ("demo", "long")])
    rep = compare_to_baseline(rows(0.87), rows(0.90), tol)
    by_bench = {c.benchmark: c for c in rep.comparisons}
    assert by_bench["demo"].status == "undefined" and by_bench["long"].status == "regressed"
    assert compare_to_baseline(rows(0.89), rows(0.90), tol).ok
    f.write_text("benchmarks:\n  long:\n    default: {abs: 1}\n")
    with pytest.raises(ValueError, match="benchmarks.long"):
        load_tolerances(f)
