"""LMD, PSNR and SSIM against the ground truth: protocol behaviour on real (demo-rendered) faces, the
evaluation suite giving the standalone numbers, the ground truth's face tracks computed once, and the
leaderboard taking the values (capped PSNR, controls)."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest

from eval.fidelity.evaluate import fidelity_rows
from eval.fidelity.lmd import PROTOCOL_VERSION as LMD_VERSION, frame_landmarks, frame_lmd, lmd_rows
from eval.fidelity.pixels import PROTOCOL_VERSION as PIX_VERSION, PSNR_CAP_DB, frame_scores, pixel_rows
from kling.io.encode import write_video
from tests.support.avatar import demo_frames

FIDELITY = {"psnr", "ssim", "lmd", "lmd_face_rate"}


@pytest.fixture(scope="module")
def clip():
    return demo_frames("ava_talk", 1.2)  # 30 frames: longer than face tracking's 1 s minimum


@pytest.fixture(scope="module")
def videos(clip, tmp_path_factory):
    """The truth, a still-frame video over its audio, and the truth squashed to 256x176 (another aspect)."""
    frames, audio = clip
    d = tmp_path_factory.mktemp("fidelity")
    squashed = np.stack([cv2.resize(f, (256, 176), interpolation=cv2.INTER_AREA) for f in frames])
    return SimpleNamespace(truth=write_video(d / "truth.mp4", frames, audio=audio),
                           still=write_video(d / "still.mp4", np.repeat(frames[:1], len(frames), 0), audio=audio),
                           squashed=write_video(d / "squashed.mp4", squashed, audio=audio))


def _by_metric(rows):
    return {r["metric"]: r for r in rows}


def test_psnr_ssim_identity_noise_and_resize(clip):
    frames, _ = clip
    f = frames[:4]
    psnr, ssim = frame_scores(f, f)
    assert (psnr == PSNR_CAP_DB).all() and np.allclose(ssim, 1.0)  # MSE 0: capped, never +inf
    noisy = np.clip(f.astype(int) + np.random.default_rng(0).integers(-20, 21, f.shape), 0, 255).astype(np.uint8)
    p2, s2 = frame_scores(noisy, f)
    assert (20 < p2).all() and (p2 < 35).all() and (s2 < 0.95).all()
    # a half-size generated video is resized to the truth's size before comparison
    half = np.stack([cv2.resize(x, (128, 128), interpolation=cv2.INTER_AREA) for x in f])
    p3, s3 = frame_scores(half, f)
    assert p3.shape == (4,) and (p3 > 25).all() and (s3 > 0.8).all()


def test_lmd_zero_on_itself_and_invariant_to_framing(clip):
    from kling.perception.faces.detect import load_detector

    frames, _ = clip
    t = max(load_detector("dlib").detect(frames[:1])[0], key=lambda d: d.area).lm68
    assert t is not None and t.shape == (68, 2)
    assert frame_lmd(t, t) == pytest.approx(0.0, abs=1e-9)
    # a similarity transform of the whole face (rotation, scale, shift) is aligned away
    rot = np.array([[np.cos(0.2), -np.sin(0.2)], [np.sin(0.2), np.cos(0.2)]]) * 1.3
    moved = t @ rot.T + [11.0, -7.0]
    assert frame_lmd(moved, t) == pytest.approx(0.0, abs=1e-6)
    # a different mouth shape is not
    other = t.copy()
    other[48:68, 1] += np.where(np.arange(20) % 2, 3.0, -3.0)
    assert frame_lmd(other, t) > 0.02


def test_the_face_of_a_frame_is_its_largest_measured_track_row():
    lm = lambda v: np.full(136, v, np.float32)  # noqa: E731
    rows = [  # frame, track, box side, landmarks, interpolated
        (0, 0, 50, lm(1), False), (0, 1, 80, lm(2), False),  # the larger face wins
        (1, 0, 80, lm(3), False), (1, 1, 80, lm(4), False),  # a tie: the lower track id
        (2, 0, 90, lm(5), True), (2, 1, 40, lm(6), False),  # the largest face was only interpolated: no face
        (3, 0, 90, None, False), (3, 1, 40, lm(7), False),  # ... or has no 68 points: no face either
    ]
    table = pd.DataFrame([{"frame": f, "track_id": t, "x0": 0.0, "y0": 0.0, "x1": float(s), "y1": float(s), "lm68": p,
                           "interpolated": i} for f, t, s, p, i in rows])
    got = frame_landmarks(table)
    assert sorted(got) == [0, 1] and got[0][0, 0] == 2 and got[1][0, 0] == 3 and got[0].shape == (68, 2)


def test_lmd_separates_the_true_mouth_from_a_still_one(videos):
    same = _by_metric(lmd_rows(videos.truth, videos.truth, "c", "dlib"))
    frozen = _by_metric(lmd_rows(videos.still, videos.truth, "c", "dlib"))
    assert same["lmd"]["protocol_version"] == LMD_VERSION and same["lmd"]["status"] == "ok"
    assert same["lmd"]["backbone"] == "dlib68+dlib" and len(same["lmd"]["backbone_sha256"]) == 64
    assert same["lmd"]["value"] == pytest.approx(0.0, abs=1e-9) and same["lmd_face_rate"]["value"] == 1.0
    assert frozen["lmd"]["value"] > 0.005 and frozen["lmd"]["n"] >= 25
    # the same face squashed: its points are scaled back per axis to the truth's frame, so the mouth matches
    # about as well as dlib's points repeat (measured 0.025; 0.161 without the scaling, which a similarity
    # transform cannot undo)
    squashed = _by_metric(lmd_rows(videos.squashed, videos.truth, "c", "dlib"))
    assert squashed["lmd"]["n"] >= 25 and squashed["lmd"]["value"] < 0.06
    rows = pixel_rows(videos.still, videos.truth, "c")
    assert {r["metric"] for r in rows} == {"psnr", "ssim"} and all(r["protocol_version"] == PIX_VERSION for r in rows)
    assert all(r["status"] == "ok" and r["n"] == 30 for r in rows)


def test_lmd_without_faces_or_too_short_is_unavailable(tmp_path, videos):
    blank = write_video(tmp_path / "b.mp4", np.full((30, 64, 64, 3), 128, np.uint8))
    rows = _by_metric(lmd_rows(blank, videos.truth, "b", "dlib"))
    assert rows["lmd"]["status"] == "unavailable" and "both" in rows["lmd"]["reason"]
    assert "generated: no_face" in rows["lmd"]["reason"] and rows["lmd_face_rate"]["value"] == 0.0
    frames, _ = demo_frames("ava_talk", 0.4)
    short = write_video(tmp_path / "short.mp4", frames)
    row = _by_metric(lmd_rows(videos.truth, short, "s", "dlib"))["lmd"]
    assert row["status"] == "unavailable" and "ground truth: too_short: 10 frames" in row["reason"]


def test_lengths_differ_and_broken_truth(tmp_path, clip):
    frames, _ = clip
    long_ = write_video(tmp_path / "long.mp4", frames)
    short = write_video(tmp_path / "short.mp4", frames[:17])
    # frame i against frame i, over the shorter length, whichever is the ground truth (PSNR is symmetric)
    both = [_by_metric(pixel_rows(gen, ref, "c"))["psnr"] for gen, ref in ((long_, short), (short, long_))]
    assert [r["n"] for r in both] == [17, 17] and both[0]["value"] == both[1]["value"] > 35
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    rows = _by_metric(pixel_rows(long_, broken, "c"))
    assert all(r["status"] == "unavailable" and "broken.mp4 unreadable" in r["reason"] for r in rows.values())


def test_suite_rows_equal_the_standalone_rows_and_truth_is_tracked_once(videos, monkeypatch):
    """eval.suite.evaluate_case adds exactly fidelity_rows' rows for a case with a ground truth (none without
    one); the ground truth's face tracks are computed by the first evaluation and read back by the next."""
    from tests.support.decodes import count_decodes
    from eval.suite import EvalSettings, evaluate_case
    from kling.perception.faces.detect import load_detector

    decodes = count_decodes(monkeypatch)
    settings = EvalSettings(sync_backbones=(), identity_backbones=(), adherence=False, distribution=False)
    case = SimpleNamespace(id="c", reference=[], instruction="", ground_truth=videos.truth)
    suite, _ = evaluate_case(videos.still, case, [], [], load_detector("auto"), settings)
    # the generated video twice (tracks, then every frame metric), the truth twice (its tracks, PSNR/SSIM)
    assert sorted(decodes) == sorted(2 * [str(videos.still)] + 2 * [str(videos.truth)])
    decodes.clear()
    alone = fidelity_rows(videos.still, videos.truth, "c")
    assert decodes.count(str(videos.truth)) == 1  # PSNR/SSIM only: its tracks came from the cache
    assert {r["metric"] for r in suite} == FIDELITY
    assert sorted(suite, key=lambda r: r["metric"]) == sorted(alone, key=lambda r: r["metric"])
    assert all(r["status"] == "ok" for r in suite)

    no_truth, _ = evaluate_case(videos.still, SimpleNamespace(id="c", reference=[], instruction="", ground_truth=None),
                                [], [], load_detector("auto"), settings)
    assert not {r["metric"] for r in no_truth} & FIDELITY


def test_leaderboard_takes_the_values_and_the_controls_order_them(videos):
    """Rows of the ground-truth control (the truth itself: PSNR capped, not inf) and of the still reference
    aggregate to finite values, pass their control rules, and the regression gate compares them."""
    from eval.leaderboard.aggregate import aggregate
    from eval.leaderboard.controls import GROUND_TRUTH, STILL_REFERENCE, evaluate_controls
    from eval.leaderboard.regress import compare_to_baseline

    rows = []
    for system, video in ((GROUND_TRUTH, videos.truth), (STILL_REFERENCE, videos.still)):
        one = fidelity_rows(video, videos.truth, "a")
        rows += [r | {"system": system, "benchmark": "bench", "run_id": system, "clip_id": case}
                 for case in ("a", "b") for r in one]  # two cases with the same values
    agg = aggregate(rows)
    assert set(agg["metric"]) == FIDELITY and np.isfinite(agg["value"].astype(float)).all()
    assert (agg["status"] == "ok").all()
    gt_psnr = agg[(agg["system"] == GROUND_TRUTH) & (agg["metric"] == "psnr")]["value"].item()
    assert gt_psnr == PSNR_CAP_DB
    outcomes = {o.metric: o.status for o in evaluate_controls(rows)}
    assert outcomes == {"psnr": "pass", "ssim": "pass", "lmd": "pass"}
    report = compare_to_baseline(rows, rows)
    assert report.ok and {c.status for c in report.comparisons} == {"ok"}


def test_truth_tracks_cache_round_trip_and_damaged_entry(videos):
    """The cached table reads back as computed (types, landmarks, summary); a damaged entry is recomputed."""
    from eval.fidelity.truth_tracks import cache_path, truth_tracks
    from kling.perception.faces.detect import load_detector

    detector = load_detector("dlib")
    fresh = truth_tracks(videos.truth, detector)
    path = cache_path(videos.truth, detector)
    assert path.is_file() and path.parent.parent.name == "face_tracks"
    cached = truth_tracks(videos.truth, detector)
    assert cached.attrs["face_track_summary"] == fresh.attrs["face_track_summary"]
    assert frame_landmarks(cached).keys() == frame_landmarks(fresh).keys()
    assert all(np.array_equal(a, frame_landmarks(fresh)[f]) for f, a in frame_landmarks(cached).items())
    pd.testing.assert_frame_equal(cached.drop(columns=["lm5", "lm68"]), fresh.drop(columns=["lm5", "lm68"]))
    path.write_bytes(b"damaged")
    again = truth_tracks(videos.truth, detector)
    assert len(again) == len(fresh) and path.stat().st_size > 100  # recomputed and written again
