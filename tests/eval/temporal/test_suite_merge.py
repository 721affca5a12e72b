"""Merging the set-level accumulators: a DistributionSuite split over two workers (each with its own feature
cache, so each computes its own videos) merges into the figures of one pass, bit for bit, in either merge
order; overlapping or mismatched parts are refused."""

from __future__ import annotations

import numpy as np
import pytest

from eval.fid.cache import FeatureCache
from eval.temporal.suite import DistributionSuite, SuiteConfig, accumulate, evaluate_system
from eval.temporal.videoset import VideoSet
from kling.io.encode import write_video
from tests.support.fid import write_inception_weights


def bits(rows: list[dict]) -> list[dict]:
    """Rows with every float as its exact bit pattern (nan compares equal to nan)."""
    return [{k: v.hex() if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def _video(path, n, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (32, 32, 3)).astype(np.int16)
    frames = [np.clip(np.roll(base, 2 * t, axis=1) + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
              for t in range(n)]
    return write_video(path, np.stack(frames), fps=25)


def test_videoset_merge_is_order_free_and_refuses_overlap():
    a, b = VideoSet(), VideoSet()
    a.add("v0", "zero", 0)
    a.add("v3", "three", 3)
    b.add("v1", "one", 1)
    b.add("v2", "two", 2)
    assert list(b.merge(a)) == ["v0", "v1", "v2", "v3"] and b.values() == ["zero", "one", "two", "three"]
    c = VideoSet()
    c.add("v9", "nine", 9)
    c.add("v9", "nine again")  # a video listed twice keeps its place and is counted once
    assert c.items() == [("v9", "nine again")]
    with pytest.raises(ValueError, match="both parts"):
        b.merge(c).merge(c)
    clash = VideoSet()
    clash.add("other", "x", 1)
    with pytest.raises(ValueError, match="ranks"):
        VideoSet().merge(b).merge(clash)


def test_split_suite_merges_to_one_pass(tmp_path):
    w = write_inception_weights(tmp_path / "w.pth", seed=3)
    refs = [_video(tmp_path / f"r{i}.mp4", 11, i) for i in range(2)]
    gens = [_video(tmp_path / f"g{i}.mp4", n, 10 + i) for i, n in enumerate((12, 10, 11))]
    broken = tmp_path / "g_broken.mp4"
    broken.write_bytes(b"not a video")
    gens.insert(2, broken)
    cfg = SuiteConfig(window_s=0.2, fid_weights=str(w), frame_stride=10, n_boot=20)
    one = evaluate_system(refs, gens, cfg, cache=FeatureCache(tmp_path / "one"))

    first = accumulate(gens[:2], DistributionSuite(cfg, FeatureCache(tmp_path / "a")))
    second = accumulate(gens[2:], DistributionSuite(cfg, FeatureCache(tmp_path / "b")), first_rank=2)
    merged = second.merge(first)  # the second half finished first: the order of merging does not matter
    assert [p.rsplit("/", 1)[-1] for p in merged.gen] == ["g0.mp4", "g1.mp4", "g2.mp4"]
    assert bits(merged.rows(refs)) == bits(one)
    by = {(r["metric"], r["clip_id"], r["window"]): r for r in one}
    # the comparison covers computed figures: whole-set and per-window FID, drift, per-clip statistics
    assert by[("fid", "__all__", "all")]["status"] == "ok" and by[("fid", "__all__", "all")]["n"] == 5
    assert by[("fid", "__all__", "0-0.2s")]["status"] == "ok" and by[("fid_drift_slope", "__all__", "all")]
    assert by[("sharpness_drift_slope", "__all__", "all")]["n"] == 3 and ("transition_max_z", "g2", "all") in by


def test_suites_of_different_configs_do_not_merge():
    a = DistributionSuite(SuiteConfig(window_s=1.0, metrics=("drift",)))
    b = DistributionSuite(SuiteConfig(window_s=2.0, metrics=("drift",)))
    with pytest.raises(ValueError, match="different configs"):
        a.merge(b)
