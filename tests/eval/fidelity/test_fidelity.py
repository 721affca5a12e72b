"""LMD, PSNR and SSIM against the ground truth: protocol behaviour on real (demo-rendered) faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eval.fidelity.lmd import PROTOCOL_VERSION as LMD_VERSION, LandmarkReader, frame_lmd, lmd_rows, lmd_values
from eval.fidelity.pixels import PROTOCOL_VERSION as PIX_VERSION, frame_scores, pixel_rows
from kling.io.encode import write_video
from tests.support.avatar import demo_frames


@pytest.fixture(scope="module")
def clip():
    return demo_frames("ava_talk", 0.4)


def test_psnr_ssim_identity_noise_and_resize(clip):
    frames, _ = clip
    f = frames[:4]
    psnr, ssim = frame_scores(f, f)
    assert np.isinf(psnr).all() and np.allclose(ssim, 1.0)
    noisy = np.clip(f.astype(int) + np.random.default_rng(0).integers(-20, 21, f.shape), 0, 255).astype(np.uint8)
    p2, s2 = frame_scores(noisy, f)
    assert (20 < p2).all() and (p2 < 35).all() and (s2 < 0.95).all()
    # a half-size generated video is resized to the truth's size before comparison
    half = np.stack([cv2.resize(x, (128, 128), interpolation=cv2.INTER_AREA) for x in f])
    p3, s3 = frame_scores(half, f)
    assert p3.shape == (4,) and (p3 > 25).all() and (s3 > 0.8).all()


def test_lmd_zero_on_itself_and_invariant_to_framing(clip):
    frames, _ = clip
    reader = LandmarkReader("dlib")
    t = reader(frames[0])
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


def test_lmd_separates_the_true_mouth_from_a_still_one(clip, tmp_path):
    frames, audio = clip
    truth = write_video(tmp_path / "truth.mp4", frames, audio=audio)
    still = write_video(tmp_path / "still.mp4", np.repeat(frames[:1], len(frames), 0), audio=audio)
    reader = LandmarkReader("dlib")
    same = lmd_rows(truth, truth, "c", reader)
    frozen = lmd_rows(still, truth, "c", reader)
    lmd_same = next(r for r in same if r["metric"] == "lmd")
    lmd_still = next(r for r in frozen if r["metric"] == "lmd")
    assert lmd_same["protocol_version"] == LMD_VERSION and lmd_same["status"] == "ok"
    assert lmd_same["value"] == pytest.approx(0.0, abs=1e-9)
    assert lmd_still["value"] > 0.005 and lmd_still["n"] >= 8
    rows = pixel_rows(still, truth, "c")
    assert {r["metric"] for r in rows} == {"psnr", "ssim"} and all(r["protocol_version"] == PIX_VERSION for r in rows)


def test_lmd_without_faces_is_unavailable(tmp_path):
    blank = np.full((5, 64, 64, 3), 128, np.uint8)
    values, n = lmd_values(blank, blank, LandmarkReader("dlib"))
    assert n == 5 and np.isnan(values).all()
    v = write_video(tmp_path / "b.mp4", blank)
    row = next(r for r in lmd_rows(v, v, "b", LandmarkReader("dlib")) if r["metric"] == "lmd")
    assert row["status"] == "unavailable" and "both" in row["reason"]
