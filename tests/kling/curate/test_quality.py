"""Quality signals: head pose from projected landmarks, sharpness, and the per-clip table from a real video."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from kling.curate.clips import candidate_clips, clip_id
from kling.perception.faces.pose import euler_to_matrix, head_pose, head_pose_from_tracks, matrix_to_euler, project_model
from kling.curate.quality import QUALITY_COLUMNS, compute_quality, sharpness
from kling.perception.shots import Shot


# --- pose -------------------------------------------------------------------------------------------------

def test_euler_round_trip():
    ang = np.array([[30.0, -10.0, 5.0], [-60.0, 25.0, -15.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(matrix_to_euler(euler_to_matrix(*ang.T)), ang, atol=1e-9)


@pytest.mark.parametrize("kind", [68, 5])
def test_head_pose_recovers_known_angles(kind):
    rng = np.random.default_rng(kind)
    ang = np.column_stack([rng.uniform(-40, 40, 60), rng.uniform(-20, 20, 60), rng.uniform(-15, 15, 60)])
    lm = project_model(ang[:, 0], ang[:, 1], ang[:, 2], 640, 480, kind=kind)
    exact = head_pose(lm, 640, 480)
    np.testing.assert_allclose(exact, ang, atol=0.05)
    noisy = head_pose(lm + rng.normal(0, 0.5, lm.shape), 640, 480)  # half-pixel landmark noise
    err = np.abs(noisy - ang)
    assert np.median(err[:, :2]) < 1.5 and err[:, :2].max() < 5.0


def test_head_pose_from_track_table_prefers_lm68_and_handles_missing():
    lm68 = project_model([30.0], [0.0], [0.0], 320, 240, kind=68)[0]
    lm68 = np.nan_to_num(lm68, nan=0.0)  # a full 68-point row: unused points at 0
    lm5 = project_model([-20.0], [10.0], [0.0], 320, 240, kind=5)[0]
    ft = pd.DataFrame({
        "lm5": [lm5.ravel(), lm5.ravel(), None],
        "lm68": [lm68.ravel(), None, None],
    })
    pose = head_pose_from_tracks(ft, 320, 240)
    np.testing.assert_allclose(pose[0], [30, 0, 0], atol=0.1)
    np.testing.assert_allclose(pose[1], [-20, 10, 0], atol=0.1)
    assert np.isnan(pose[2]).all()


# --- sharpness --------------------------------------------------------------------------------------------

def _drawing(side: int) -> np.ndarray:
    """The same line drawing rendered crisply at any resolution (drawn at 4x, area-downsampled)."""
    big = np.full((side * 4, side * 4, 3), 200, np.uint8)
    s = side * 4 / 100.0
    for k in range(8):
        cv2.line(big, (int(s * (5 + 11 * k)), int(s * 5)), (int(s * (10 + 10 * k)), int(s * 95)),
                 (20, 20, 20), max(1, int(s)))
        cv2.circle(big, (int(s * 50), int(s * 50)), int(s * (5 + 5 * k)), (40, 90, 160), max(1, int(s)))
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)


def test_sharpness_separates_blur_and_ignores_resolution():
    sharp_small, sharp_big = sharpness(_drawing(224)), sharpness(_drawing(720))
    blurred = sharpness(cv2.GaussianBlur(_drawing(720), (0, 0), 6))
    assert 0.75 < sharp_small / sharp_big < 1.33  # same content, 10x the pixels: about the same figure
    assert blurred < sharp_small / 10


# --- compute_quality on an encoded video ------------------------------------------------------------------

W, H, N = 256, 192, 60


def _video(path, fast_track_offset: int = 0):
    """60 frames: shot 0 (0-29) a crisp face-like patch, shot 1 (30-59) a blurred one that moves fast."""
    from kling.io.encode import write_video

    rng = np.random.default_rng(0)
    bg = cv2.resize(rng.integers(0, 255, (6, 8, 3)).astype(np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    face = _drawing(64)
    soft = cv2.GaussianBlur(face, (0, 0), 4)
    frames, boxes = [], []
    for i in range(N):
        img = bg.copy() if i < 30 else (255 - bg)
        if i < 30:
            x, y, patch = 60, 50, face
        else:
            x, y, patch = 20 + 4 * (i - 30), 60, soft  # 4 px / frame = 1/16 box height per frame
        img[y:y + 64, x:x + 64] = patch
        frames.append(img)
        boxes.append((x, y, x + 64, y + 64))
    write_video(path, np.stack(frames), fps=25)
    return boxes


def _face_tracks(boxes):
    rows = []
    for f, (x0, y0, x1, y1) in enumerate(boxes):
        tid = 0 if f < 30 else 1
        yaw = 0.0 if tid == 0 else 40.0
        lm5 = project_model([yaw], [0.0], [0.0], W, H, kind=5, distance_mm=700)[0]
        rows.append(dict(frame=f, track_id=tid, x0=x0, y0=y0, x1=x1, y1=y1, score=0.9,
                         lm5=lm5.ravel().astype(np.float32), lm68=None, mouth_open=0.1, interpolated=f % 10 == 0))
    # a short fragment of a third track: below the candidate minimum, not a clip
    for f in range(10, 14):
        rows.append(dict(frame=f, track_id=2, x0=0, y0=0, x1=30, y1=30, score=0.5, lm5=np.zeros(10, np.float32),
                         lm68=None, mouth_open=np.nan, interpolated=False))
    return pd.DataFrame(rows).astype({"frame": "int32", "track_id": "int32"})


def test_compute_quality_per_clip(tmp_path):
    path = tmp_path / "vid.mp4"
    ft = _face_tracks(_video(path))
    shots = [Shot(0, 0, 30), Shot(1, 30, 60)]
    vad = np.zeros(N, bool)
    vad[10:25] = True  # half of shot 0 speaks, shot 1 is silent
    q = compute_quality(path, ft, shots, vad, video_id="vid")
    assert list(q.columns) == QUALITY_COLUMNS
    assert list(q["clip_id"]) == [clip_id("vid", 0, 0), clip_id("vid", 1, 1)] == ["vid-s0-t0", "vid-s1-t1"]
    a, b = q.iloc[0], q.iloc[1]
    assert (a.start_frame, a.end_frame, b.start_frame, b.end_frame) == (0, 30, 30, 60)
    assert a.duration_s == pytest.approx(1.2)
    assert a.sharpness > 5 * b.sharpness
    assert a.face_px == pytest.approx(64) and a.face_ratio == pytest.approx(64 / H)
    assert a.abs_yaw < 1.0 and b.abs_yaw == pytest.approx(40, abs=1.0) and a.yaw_std < 1.0
    assert a.box_speed == pytest.approx(0.0) and b.box_speed == pytest.approx(4 / 64)
    assert a.face_diff < b.face_diff
    assert a.speech_ratio == pytest.approx(0.5) and b.speech_ratio == 0.0
    assert a.interpolated_ratio == pytest.approx(3 / 30)
    # no VAD (no audio) -> speech_ratio 0; stride still measures every clip
    q2 = compute_quality(path, ft, shots, None, video_id="vid")
    assert (q2["speech_ratio"] == 0).all() and q2["sharpness"].notna().all()


def test_candidates_split_tracks_at_shots_and_keep_longest_run():
    ft = pd.DataFrame({"frame": list(range(0, 40)) + list(range(0, 5)) + list(range(12, 20)),
                       "track_id": [7] * 40 + [8] * 5 + [8] * 8})
    c = candidate_clips("v", ft, [Shot(0, 0, 25), Shot(1, 25, 40)], min_frames=8)
    assert list(c["clip_id"]) == ["v-s0-t7", "v-s0-t8", "v-s1-t7"]
    assert c[["start_frame", "end_frame"]].values.tolist() == [[0, 25], [12, 20], [25, 40]]
    assert len(candidate_clips("v", ft.iloc[:0], [Shot(0, 0, 25)])) == 0


# --- the demo corpus: shots, VAD, face tracks, quality and filters together ---------------------------------

@pytest.mark.slow
def test_demo_corpus_clips(demo_corpus):
    """Blurred clip rejected as blurry, scene-cut clip split at the recorded frame and each shot's speech
    bound to its own face, silent clip without speech, face-less clip with nothing to bind."""
    from kling.perception.faces.tracks import compute_face_tracks
    from kling.curate.filters import FilterConfig, apply_filters
    from kling.perception.shots import detect_shots
    from kling.perception.speech import bind_speakers, detect_speech_file
    from kling.io.audio import read_audio

    results = {}
    for cid in ("ava_blur", "bo_cal_cut", "bo_silent", "scene_noface"):
        rec, path = demo_corpus.clip(cid), demo_corpus.path(cid)
        shots = detect_shots(path)
        assert [s.start_frame for s in shots[1:]] == rec.scene_cut_frames, cid
        assert shots[-1].end_frame == rec.n_frames
        vad = detect_speech_file(path, n_frames=rec.n_frames)
        if rec.speech_segments:
            assert len(vad.segments) == len(rec.speech_segments), cid
            for (a, b), (ta, tb) in zip(vad.segments, rec.speech_segments):
                assert abs(a - ta) < 0.2 and abs(b - tb) < 0.2, (cid, vad.segments, rec.speech_segments)
        ft = compute_face_tracks(path, shots=shots).tracks
        q = compute_quality(path, ft, shots, vad.frame_speech, video_id=cid)
        results[cid] = (shots, vad, ft, q)

    shots, vad, ft, q = results["bo_cal_cut"]
    assert list(q["clip_id"]) == ["bo_cal_cut-s0-t0", "bo_cal_cut-s1-t1"]
    assert q["end_frame"].iloc[0] == q["start_frame"].iloc[1] == 75
    bound = bind_speakers(vad.segments, ft, read_audio(demo_corpus.path("bo_cal_cut")))
    assert bound["track_id"].tolist() == [0, 1] and (bound["status"] == "bound").all()

    _, vad, _, q = results["bo_silent"]
    assert vad.segments == [] and vad.speech_ratio == 0.0 and q["speech_ratio"].eq(0).all()
    _, vad, ft, q = results["scene_noface"]
    assert len(q) == 0 and len(vad.segments) > 0
    assert (bind_speakers(vad.segments, ft, None)["status"] == "unbound").all()

    table = pd.concat([results[c][3] for c in ("ava_blur", "bo_cal_cut", "bo_silent")], ignore_index=True)
    out = apply_filters(table, FilterConfig(min_duration_s=2.0))
    reasons = dict(zip(out["clip_id"], out["reject_reasons"]))
    assert "blurry" in reasons["ava_blur-s0-t0"]
    assert reasons["bo_silent-s0-t0"] == ["no_speech"]
    assert reasons["bo_cal_cut-s0-t0"] == [] and reasons["bo_cal_cut-s1-t1"] == []


def test_quality_from_the_parquet_file_equals_the_table(tmp_path, monkeypatch):
    """Given the face-track file, compute_quality reads the scalar columns and the landmarks in batches (pose
    per row): the same numbers, bit for bit, as from the whole table in memory. Rows mix lm68 and lm5 only."""
    import kling.curate.quality as quality
    from kling.atomic import write_parquet_atomic
    from kling.perception.faces.tracks import FACE_TRACKS_SCHEMA, FaceTrackResult

    path = tmp_path / "vid.mp4"
    ft = _face_tracks(_video(path))
    lm68 = project_model([20.0], [10.0], [5.0], W, H, kind=68, distance_mm=700)[0]
    lm68 = np.nan_to_num(lm68).ravel().astype(np.float32)  # only the model's 8 points matter
    ft["lm68"] = [lm68 if f % 3 else None for f in ft["frame"]]
    shots = [Shot(0, 0, 30), Shot(1, 30, 60)]
    vad = np.zeros(N, bool)
    vad[10:25] = True
    parts = (FaceTrackResult(ft.iloc[i:i + 16]).to_arrow() for i in range(0, len(ft), 16))
    table = write_parquet_atomic(parts, tmp_path / "ft.parquet", schema=FACE_TRACKS_SCHEMA)
    monkeypatch.setattr(quality, "_POSE_BATCH_ROWS", 7)  # batches that cut through clips and row groups
    from_file = compute_quality(path, table, shots, vad, video_id="vid")
    from_frame = compute_quality(path, ft, shots, vad, video_id="vid")
    pd.testing.assert_frame_equal(from_file, from_frame, check_exact=True)
    assert from_file["abs_roll"].iloc[0] == pytest.approx(5, abs=0.5)  # the lm68 rows (2 in 3) were used
    pd.testing.assert_frame_equal(compute_quality(path, pd.read_parquet(table), shots, vad, video_id="vid"), from_file,
                                  check_exact=True)
