"""Shot detection: hard cuts found at the right frame, fades and flashes not split, streaming = one pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kling.perception.shots import ContentWeights, Shot, ShotDetector, downscaled_size


def _scene(seed: int, h: int = 144, w: int = 192) -> np.ndarray:
    """A textured RGB picture: smooth colour blobs plus fine noise (like a real frame)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.integers(-6, 7, img.shape).astype(np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jitter(img: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n frames of one scene with small per-frame sensor noise and a slow pan (not cuts)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = np.roll(img, i // 4, axis=1).astype(np.int16) + rng.integers(-3, 4, img.shape)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(out)


def _run(frames: np.ndarray, chunk: int = 16, **cfg) -> tuple[list[Shot], ShotDetector]:
    det = ShotDetector(**cfg)
    for s in range(0, len(frames), chunk):
        det.update(frames[s:s + chunk], s)
    return det.finish(len(frames)), det


def test_hard_cut_found_at_its_frame():
    a, b = _scene(1), _scene(2)
    frames = np.concatenate([_jitter(a, 40, 3), _jitter(b, 35, 4)])
    shots, det = _run(frames)
    assert shots == [Shot(0, 0, 40), Shot(1, 40, 75)]
    assert det.scores[40] >= 27.0 and det.scores[:40].max() < 27.0 and det.scores[41:].max() < 27.0
    assert shots[1].end_frame_exclusive == 75 and shots[1].n_frames == 35


def test_gradual_fade_is_not_a_cut():
    a, b = _scene(1), _scene(2)
    fade = np.stack([((1 - t) * a + t * b).astype(np.uint8) for t in np.linspace(0, 1, 30)])
    frames = np.concatenate([_jitter(a, 30, 3), fade, _jitter(b, 30, 4)])
    shots, det = _run(frames)
    assert shots == [Shot(0, 0, 90)]
    assert det.scores.max() < 27.0


def test_min_scene_len_merges_flash_and_early_cut():
    a, b, c = _scene(1), _scene(2), _scene(5)
    # a cut at frame 10 (< min_scene_len from the start) is ignored, as in scenedetect
    early = np.concatenate([_jitter(a, 10, 3), _jitter(b, 40, 4)])
    assert _run(early)[0] == [Shot(0, 0, 50)]
    # with min_scene_len=5 the same cut is kept
    assert _run(early, min_scene_len=5)[0] == [Shot(0, 0, 10), Shot(1, 10, 50)]
    # cut at 30, then a 3-frame flash at 36: the flash does not create shots shorter than 15 frames
    flash = np.concatenate([_jitter(a, 30, 3), _jitter(b, 6, 4), _jitter(c, 3, 6), _jitter(b, 60, 7)])
    shots, det = _run(flash)
    assert (det.scores[[30, 36, 39]] >= 27.0).all()  # three frames above threshold, one cut kept
    assert shots == [Shot(0, 0, 30), Shot(1, 30, 99)]


@pytest.mark.parametrize("seed", range(4))
def test_settled_frames_gain_no_later_cut(seed):
    """Read frame by frame through cuts and flashes: the cuts below `settled` at any moment are the final ones
    below it, and `settled` trails the reading by at most min_scene_len + 1 frames."""
    rng = np.random.default_rng(seed)
    scenes = [_scene(s, 36, 48) for s in range(4)]
    frames = np.concatenate([_jitter(scenes[rng.integers(4)], int(rng.choice([1, 2, 3, 8, 20, 40])), i)
                             for i in range(30)])
    det = ShotDetector()
    seen = []
    for i in range(len(frames)):
        det.update(frames[i:i + 1], i)
        seen.append((det.settled, det.cuts))
        assert i + 1 - det.settled <= det.min_scene_len + 1
    final = det.cuts
    assert len(final) >= 3 and any(i + 1 - s > 1 for i, (s, _) in enumerate(seen))  # merges happened
    for settled, cuts in seen:
        assert [c for c in cuts if c < settled] == [c for c in final if c < settled]


def test_streaming_equals_single_pass_and_reference_formula():
    a, b = _scene(1, 300, 400), _scene(2, 300, 400)  # large enough to be downscaled
    frames = np.concatenate([_jitter(a, 20, 3), _jitter(b, 20, 4)])
    one, det1 = _run(frames, chunk=len(frames))
    many, det7 = _run(frames, chunk=7)
    assert one == many == [Shot(0, 0, 20), Shot(1, 20, 40)]
    np.testing.assert_allclose(det1.scores, det7.scores, rtol=0, atol=1e-4)
    # reference: scenedetect's per-frame formula, written out frame by frame
    w2, h2 = downscaled_size(400, 300, 256)
    assert (w2, h2) == (256, 192)
    ref = [0.0]
    prev = None
    for f in frames:
        hsv = cv2.cvtColor(cv2.resize(f, (w2, h2), interpolation=cv2.INTER_LINEAR), cv2.COLOR_RGB2HSV)
        planes = [hsv[..., k].astype(np.int32) for k in range(3)]
        if prev is not None:
            ref.append(sum(np.abs(p - q).sum() / float(w2 * h2) for p, q in zip(planes, prev)) / 3.0)
        prev = planes
    np.testing.assert_allclose(det7.scores, ref, rtol=0, atol=1e-4)


def test_edges_component_and_validation():
    a, b = _scene(1), _scene(2)
    frames = np.concatenate([_jitter(a, 20, 3), _jitter(b, 20, 4)])
    shots, det = _run(frames, weights=ContentWeights(1, 1, 1, 1))
    assert shots == [Shot(0, 0, 20), Shot(1, 20, 40)]
    with pytest.raises(ValueError):
        ShotDetector(weights=ContentWeights(0, 0, 0, 0))
    det = ShotDetector()
    det.update(frames[:5], 0)
    with pytest.raises(ValueError, match="consecutive"):
        det.update(frames[5:10], 6)
    assert ShotDetector().finish() == []


def test_detect_shots_streams_an_encoded_video(tmp_path):
    from kling.perception.shots import detect_shots
    from kling.io.encode import write_video

    a, b = _scene(1), _scene(2)
    path = write_video(tmp_path / "cut.mp4", np.concatenate([_jitter(a, 40, 3), _jitter(b, 25, 4)]), fps=25)
    assert detect_shots(path) == [Shot(0, 0, 40), Shot(1, 40, 65)]
    assert detect_shots(path, min_scene_len=50) == [Shot(0, 0, 65)]


def test_shots_table_round_trip():
    from kling.perception.shots import shots_from_frame, shots_to_frame

    shots = [Shot(0, 0, 40), Shot(1, 40, 65)]
    df = shots_to_frame(shots)
    # the one schema: what the curation step writes and face tracks / quality read back
    assert list(df.columns) == ["index", "start_frame", "end_frame"] and set(df.dtypes.astype(str)) == {"int32"}
    assert df["end_frame"].tolist() == [40, 65]
    assert shots_from_frame(df) == shots
    assert shots_to_frame([]).empty and shots_from_frame(shots_to_frame([])) == []
