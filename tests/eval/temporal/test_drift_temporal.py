"""Drift and transitions move the right way on videos made here: a clip that blurs over time drifts (sharpness
slope < 0 with its interval below 0, last/first < 1), a clip with a hard cut has a bad transition, a steady
clip has neither. Windows are 1 s on 6 s clips to stay fast (the default is 10 s)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from eval.temporal.drift import drift_figure, evaluate_drift, window_values
from eval.temporal.setwise import windowed_distance
from eval.temporal.transitions import Z_THRESHOLD, boundaries_every, score_transitions
from kling.io.encode import write_video

N = 150  # 6 s at 25 fps


def _scene(seed, h=72, w=96):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    for _ in range(12):  # rectangles and circles: edges for the sharpness measure
        c = tuple(int(x) for x in rng.integers(30, 255, 3))
        x, y = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(6, 30)), y + int(rng.integers(6, 20))), c, -1)
        else:
            cv2.circle(img, (x, y), int(rng.integers(4, 14)), c, -1)
    return img


def _steady_frames(seed=0):
    rng = np.random.default_rng(seed + 100)
    base = _scene(seed).astype(np.int16)
    return [np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(N)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("drift")
    steady = _steady_frames()
    # fade into a blurred copy: sharpness falls steadily (a cascade losing detail over minutes)
    blur = [cv2.addWeighted(f, 1 - 0.8 * t / N, cv2.GaussianBlur(f, (0, 0), 2.0), 0.8 * t / N, 0)
            for t, f in enumerate(steady)]
    cut = steady[:75] + _steady_frames(seed=5)[75:]
    return {name: write_video(d / f"{name}.mp4", np.stack(fr), fps=25)
            for name, fr in [("steady", steady), ("blur", blur), ("cut", cut)]}


def test_blur_drifts_steady_does_not(clips):
    blur = evaluate_drift(clips["blur"], window_s=1.0).sharpness
    steady = evaluate_drift(clips["steady"], window_s=1.0).sharpness
    assert len(blur.window_means) == 6
    assert blur.slope_per_min < 0 and blur.slope_ci[1] < 0
    assert blur.ratio_last_first < 0.5
    # The steady clip's level moves by encoder rate control only (a fraction of a percent per minute, which
    # its 6 near-identical windows can make "significant"): judge drift by size, against the blurring clip.
    level = float(np.mean(steady.window_means))
    assert abs(steady.slope_per_min) < 0.05 * level
    assert abs(blur.slope_per_min) > 20 * abs(steady.slope_per_min)
    assert steady.ratio_last_first == pytest.approx(1.0, abs=0.1)


def test_hard_cut_is_a_bad_transition_steady_is_not(clips):
    cut = evaluate_drift(clips["cut"], window_s=1.0)
    steady = evaluate_drift(clips["steady"], window_s=1.0)
    assert cut.transitions.worst.frame == 75 and cut.transitions.worst.z > 3 * Z_THRESHOLD
    assert steady.transitions.boundaries == [] and steady.transitions.max_z < Z_THRESHOLD
    # given boundaries (sub-clips of 3 s): the stitch at frame 75 is scored against the within-segment spread
    given = evaluate_drift(clips["cut"], window_s=1.0, segment_s=3.0).transitions
    assert not given.detected and [b.frame for b in given.boundaries] == [75]
    quiet = evaluate_drift(clips["steady"], window_s=1.0, segment_s=3.0).transitions
    assert quiet.worst.z < Z_THRESHOLD < given.worst.z
    # appearance across far windows: the cut changes the scene, the steady clip keeps it
    assert steady.appearance["first_last"] > 0.99 > cut.appearance["first_last"]


def test_a_generated_videos_sidecar_gives_its_joins(clips, tmp_path):
    """A generated video names where its pieces meet (kling.paths.sidecar, `joins`): those are scored, in the
    single-video evaluation and in the system suite, and the worst is a whole-clip row the leaderboard aggregates."""
    import shutil

    from eval.temporal.suite import SuiteConfig, evaluate_system
    from kling.paths import sidecar

    gen = shutil.copy(clips["cut"], tmp_path / "gen.mp4")
    sidecar(gen).write_text(json.dumps({"joins": [40, 75, 110], "seed": 0}))
    plain = shutil.copy(clips["steady"], tmp_path / "plain.mp4")  # no sidecar: detected (none)
    res = evaluate_drift(gen, window_s=1.0).transitions
    assert not res.detected and [b.frame for b in res.boundaries] == [40, 75, 110] and res.worst.frame == 75
    rows = evaluate_system([], [gen, plain], SuiteConfig(window_s=1.0, metrics=("drift",), n_boot=10))
    worst = {r["clip_id"]: r for r in rows if r["metric"] == "transition_worst_z"}
    assert worst["gen"]["window"] == "all" and worst["gen"]["n"] == 3 and worst["gen"]["value"] > 3 * Z_THRESHOLD
    assert worst["plain"]["n"] == 0 and np.isnan(worst["plain"]["value"])
    for stray in ("not json", "[1, 2]", '{"joins": ["a"]}'):  # a file beside a video that is no claim of joins
        sidecar(plain).write_text(stray)
        assert evaluate_drift(plain, window_s=1.0).transitions.detected


def test_rows_carry_protocol_backbone_window(clips):
    res = evaluate_drift(clips["blur"], window_s=1.0)
    rows = res.to_rows()
    assert all(r["protocol_version"] == "drift-v1/w1" and r["backbone"] for r in rows)
    windows = {r["window"] for r in rows if r["metric"] == "sharpness"}
    assert "0-1s" in windows and "5-6s" in windows
    slope = next(r for r in rows if r["metric"] == "sharpness_drift_slope")
    assert slope["value"] < 0 and slope["stderr"] > 0
    from eval.leaderboard.schema import RunContext, complete_rows

    table = complete_rows(rows, RunContext.new("sys", "bench", "cfg"))
    assert table.num_rows == len(rows)
    json.dumps(res.to_dict(), default=str)


def test_drift_across_videos_and_helpers():
    rng = np.random.default_rng(0)
    decaying = [[10 - 2 * k + rng.normal(0, 0.3) for k in range(5)] for _ in range(8)]
    flat = [[10 + rng.normal(0, 0.3) for _ in range(5)] for _ in range(8)]
    d, f = drift_figure("q", decaying, 10.0), drift_figure("q", flat, 10.0)
    assert d.slope_ci[1] < 0 and d.ratio_ci[1] < 1 and d.n_videos == 8
    assert f.slope_ci[0] < 0 < f.slope_ci[1]
    assert window_values(np.arange(100.0), 100, window_s=2.0) == [24.5, 74.5]
    assert boundaries_every(250, 3.0) == [75, 150, 225]
    assert score_transitions(np.r_[np.nan, np.ones(50)]).boundaries == []


def test_windowed_fid_follows_the_windows():
    """Set-level distance per window: later windows of every video move away from the reference."""
    from eval.fid.sources import VideoFeatures

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(60, 8))
    videos = []
    for v in range(5):
        idx = np.arange(0, 75, 5)  # 3 s at 25 fps, every 5th frame, 1 s windows
        shift = (idx // 25)[:, None] * 1.0
        videos.append(VideoFeatures(rng.normal(size=(len(idx), 8)) + shift, idx, 75))
    fig, counts = windowed_distance("fid", ref, videos, window_s=1.0, n_boot=50)
    assert counts == [25, 25, 25]
    assert fig.window_means[0] < fig.window_means[1] < fig.window_means[2]
    assert fig.slope_per_min > 0 and fig.slope_ci[0] > 0 and not fig.higher_is_better
