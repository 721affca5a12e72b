"""A benchmark split across workers: each evaluates some of the cases (eval.suite.evaluate_cases), the partials
merge (merge_partials) and finish into the run one worker would have written, every value bit for bit
(FID, FVD and their windows computed with planted official-format Inception / I3D files, drift, per-case
rows, missing outputs), whatever the split and the order the parts come back in."""

from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest

from eval.benchmarks import Benchmark, Case
from eval.leaderboard.schema import RunContext
from eval.suite import EvalSettings, evaluate_cases, evaluate_system, merge_partials
from eval.systems import SystemDescriptor, load_system, write_descriptor
from kling.io.encode import write_video
from tests.support.fid import write_inception_weights
from tests.support.fvd import write_i3d_weights

RUN_FIELDS = ["run_id", "created_at"]  # differ between any two runs by design


def _video(path, seed, n=10):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (32, 32, 3)).astype(np.int16)
    frames = [np.clip(np.roll(base, 2 * t, axis=0) + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
              for t in range(n)]
    return write_video(path, np.stack(frames), fps=25)


@pytest.fixture
def bench_and_system(tmp_path):
    """Four cases: c0 and c1's outputs are their ground truth, c2 has no output (a missing case), c3's output
    differs from its ground truth."""
    import cv2

    root = tmp_path / "bench"
    root.mkdir()
    ref = root / "face.png"
    cv2.imwrite(str(ref), np.full((32, 32, 3), 128, np.uint8))
    gts = [_video(root / f"gt{i}.mp4", seed=i) for i in range(4)]
    cases = [Case(id=f"c{i}", reference=(ref,), audio=gts[i], instruction="", duration_class="short",
                  language="en", ground_truth=gts[i]) for i in range(4)]
    bench = Benchmark("mergebench", "1", cases, root)
    out = tmp_path / "system"
    out.mkdir()
    for i in (0, 1):
        shutil.copy(gts[i], out / f"c{i}.mp4")
    _video(out / "c3.mp4", seed=33)
    write_descriptor(out, SystemDescriptor(name="sys", version="1", source="test"))
    return bench, load_system(out)


@pytest.fixture
def planted_weights(tmp_path, monkeypatch):
    """The run's distribution suite reads planted official-format Inception / I3D files (stride 10, 10-frame
    clips: a 10-frame video gives 1 FID frame and 1 FVD clip)."""
    import eval.temporal.suite as ts

    w = tmp_path / "weights"
    suite_config = functools.partial(ts.SuiteConfig, fid_weights=str(write_inception_weights(w / "inc.pth", seed=1)),
                                     fvd_weights=str(write_i3d_weights(w / "i3d.pt", seed=2)), frame_stride=10,
                                     clip_len=10, clip_stride=10, n_boot=20)
    monkeypatch.setattr(ts, "SuiteConfig", suite_config)


def bits(table) -> list[dict]:
    rows = table.drop_columns(RUN_FIELDS).to_pylist()
    return [{k: v.hex() if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def test_split_benchmark_merges_to_the_single_run(bench_and_system, planted_weights):
    bench, system = bench_and_system
    settings = EvalSettings(sync_backbones=("syncnet_v2",), identity_backbones=("arcface",), adherence=False,
                            window_s=0.2)  # 0.2 s windows: every 10-frame video has 2
    ctx = RunContext.new(system.name, bench.name, settings.hash)
    # the workers first (each computes its own videos' features), then one worker over every case
    halves = [evaluate_cases(bench, system, settings, cases=ids) for ids in (["c0", "c1"], ["c2", "c3"])]
    assert [p.distribution is not None for p in halves] == [True, True]
    merged = merge_partials(halves[::-1]).finish(bench, ctx)  # the second half came back first
    one = evaluate_system(bench, system, settings, ctx)
    assert bits(merged.rows) == bits(one.rows)

    df = one.rows.to_pandas().set_index(["metric", "clip_id", "window"])
    for metric, n in (("fid", 3), ("fvd", 3)):  # computed, not unavailable: the comparison covers real figures
        assert df.loc[(metric, "__all__", "all"), "status"] == "ok" and df.loc[(metric, "__all__", "all"), "n"] == n
        assert df.loc[(metric, "__all__", "0-0.2s"), "status"] == "ok"
    assert df.loc[("fid_drift_slope", "__all__", "all"), "status"] == "ok"
    assert df.loc[("output_ok", "c2", "all"), "value"] == 0.0
    assert (df.xs("sync_c", level="metric")["status"] == "unavailable").all()

    # a three-way split with a worker whose only case has no output (no distribution state of its own)
    thirds = [evaluate_cases(bench, system, settings, cases=ids) for ids in (["c3", "c0"], ["c2"], ["c1"])]
    assert thirds[1].distribution is None
    assert bits(merge_partials([thirds[1], thirds[2], thirds[0]]).finish(bench, ctx).rows) == bits(one.rows)


def test_partials_that_overlap_or_miss_cases_are_refused(bench_and_system):
    bench, system = bench_and_system
    settings = EvalSettings(sync_backbones=(), identity_backbones=(), adherence=False, distribution=False)
    ctx = RunContext.new(system.name, bench.name, settings.hash)
    a = evaluate_cases(bench, system, settings, cases=["c0", "c1"])
    with pytest.raises(ValueError, match="lacks cases"):
        a.finish(bench, ctx)
    with pytest.raises(ValueError, match="both parts"):
        a.merge(evaluate_cases(bench, system, settings, cases=["c1", "c2"]))
    other = EvalSettings(sync_backbones=(), identity_backbones=(), adherence=False, distribution=False, window_s=5.0)
    with pytest.raises(ValueError, match="different runs"):
        a.merge(evaluate_cases(bench, system, other, cases=["c3"]))


def test_cases_spread_over_processes_give_the_serial_run(bench_and_system):
    """evaluate_system(workers=2): one spawned process per case at a time, merged in benchmark order. The workers
    run torch on one thread each, so a float sum may round differently in its last bits (SSIM's per-frame mean;
    on the demo's 9 cases: no value moved, one standard error by 9e-11): equal up to that, everything else
    exactly."""
    bench, system = bench_and_system
    settings = EvalSettings(sync_backbones=("syncnet_v2",), identity_backbones=("dlib",), adherence=False,
                            window_s=0.2)
    ctx = RunContext.new(system.name, bench.name, settings.hash)
    seen: list[str] = []
    spread = evaluate_system(bench, system, settings, ctx, workers=2, progress=seen.append)
    one = evaluate_system(bench, system, settings, ctx)
    assert sorted(seen) == bench.case_ids
    a, b = spread.rows.drop_columns(RUN_FIELDS).to_pylist(), one.rows.drop_columns(RUN_FIELDS).to_pylist()
    assert len(a) == len(b) and any(r["metric"] == "ssim" for r in b)
    for ra, rb in zip(a, b):
        floats = {k for k, v in rb.items() if isinstance(v, float)}
        assert {k: v for k, v in ra.items() if k not in floats} == {k: v for k, v in rb.items() if k not in floats}
        for k in floats:
            assert ra[k] == pytest.approx(rb[k], rel=1e-9, abs=1e-12, nan_ok=True), (rb["metric"], rb["clip_id"], k)
