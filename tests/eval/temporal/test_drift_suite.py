"""evaluate_system: one system against a reference set -> leaderboard rows with protocol, backbone and window
in every row; FVD without weights is `unavailable` with its reason while FID and drift still run."""

from __future__ import annotations

import numpy as np

from eval.fid.cache import FeatureCache
from tests.support.fid import write_inception_weights
from eval.leaderboard.schema import RunContext, complete_rows
from eval.temporal.suite import SuiteConfig, evaluate_system
from kling.io.encode import write_video


def _video(path, n, seed, blur=False):
    import cv2

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (40, 40, 3)).astype(np.uint8)
    frames = [cv2.GaussianBlur(base, (0, 0), 0.2 + 2 * t / n) if blur else base for t in range(n)]
    return write_video(path, np.stack(frames), fps=25)


def test_rows_for_one_system(tmp_path):
    w = write_inception_weights(tmp_path / "w.pth")
    refs = [_video(tmp_path / f"r{i}.mp4", 50, i) for i in range(2)]
    gens = [_video(tmp_path / f"g{i}.mp4", 50, 10 + i, blur=True) for i in range(2)]
    cfg = SuiteConfig(window_s=1.0, fid_weights=str(w), frame_stride=10, n_boot=20)
    rows = evaluate_system(refs, gens, cfg, cache=FeatureCache(tmp_path / "cache"))
    table = complete_rows(rows, RunContext.new("cascade", "demo", "cfg"))
    assert table.num_rows == len(rows)
    by = {(r["metric"], r["clip_id"], r["window"]): r for r in rows}
    assert by[("fid", "__all__", "all")]["status"] == "ok" and by[("fid", "__all__", "all")]["n"] == 10
    assert by[("fvd", "__all__", "all")]["status"] == "unavailable"
    assert "i3d_kinetics400" in by[("fvd", "__all__", "all")]["reason"]
    assert by[("fid", "__all__", "0-1s")]["n"] == 6 and ("fid_drift_slope", "__all__", "all") in by
    slope = by[("sharpness_drift_slope", "__all__", "all")]
    assert slope["value"] < 0 and slope["n"] == 2
    assert ("transition_worst_z", "g0", "all") in by or any(k[0] == "transition_worst_z" and k[1] == "g0" for k in by)
    assert all(r["protocol_version"] and r["backbone"] and r["window"] for r in rows)
