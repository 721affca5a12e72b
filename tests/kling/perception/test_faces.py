"""Face tracking, alignment, landmarks, the no-face case, and (with ../shared/data) real faces."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from kling.perception.faces.align import ARCFACE_DST, estimate_norm, norm_crop
from kling.perception.faces.detect import DlibDetector
from kling.perception.faces.detection import Detection
from kling.perception.faces.tracks import FACE_TRACKS_SCHEMA, FaceTrackConfig, track_chunks
from kling.perception.faces.landmarks import box_from_lm5, lm5_from_lm68, mouth_open
from kling.perception.faces.tracker import IoUTracker, iou_matrix, shot_starts, smooth_boxes, track_faces


@pytest.fixture(scope="module")
def dlib_detector():
    return DlibDetector()


def det(cx, cy, size=40.0, score=1.0):
    h = size / 2
    lm5 = np.array([[cx - 8, cy - 5], [cx + 8, cy - 5], [cx, cy + 2], [cx - 6, cy + 10], [cx + 6, cy + 10]],
                   np.float32)
    return Detection(cx - h, cy - h, cx + h, cy + h, score, lm5)


# ----------------------------------------------------------------------------------------- tracking

def test_two_crossing_faces_keep_their_identity():
    # A moves right, B moves left, 10 px vertical offset: their boxes overlap heavily mid-way.
    frames = []
    for i in range(60):
        frames.append([det(20 + 4 * i, 100), det(256 - 4 * i, 110)])
    tracks = track_faces(frames, min_len=1)
    assert len(tracks) == 2
    for t in tracks:
        assert len(t) == 60 and not t.interpolated.any()
        dx = np.diff((t.boxes[:, 0] + t.boxes[:, 2]) / 2)
        assert np.all(dx > 0) or np.all(dx < 0), "a track switched faces at the crossing"


def test_short_gap_is_interpolated_and_long_gap_splits():
    frames = [[det(100 + i, 100, score=0.9)] for i in range(30)]
    for i in (10, 11, 12):
        frames[i] = []
    (t,) = track_faces(frames, max_gap=5)
    assert len(t) == 30 and t.interpolated.sum() == 3 and t.interpolated[10:13].all()
    np.testing.assert_allclose(t.boxes[11], det(111, 100).box, atol=1e-4)
    np.testing.assert_allclose(t.lm5[11], det(111, 100).lm5, atol=1e-4)
    assert np.isnan(t.scores[10:13]).all() and np.allclose(t.scores[:10], 0.9)

    for i in range(10, 20):
        frames[i] = []
    tracks = track_faces(frames, max_gap=5)
    assert [(x.start, x.end) for x in tracks] == [(0, 9), (20, 29)]


def test_shot_boundary_splits_tracks_and_min_len_drops_short_ones():
    frames = [[det(100, 100)] for _ in range(50)]
    frames[5].append(det(300, 300))  # a one-frame false positive
    tracks = track_faces(frames, shots=[(0, 20), (20, 50)], min_len=3)
    assert [(t.track_id, t.start, t.end) for t in tracks] == [(0, 0, 19), (1, 20, 49)]
    # the same with a start frame offset and Shot-like objects
    class S:  # noqa: D401 - minimal Shot stand-in
        def __init__(self, a):
            self.start_frame = a
    tracks = track_faces(frames, start_frame=100, shots=[S(100), S(120)], min_len=3)
    assert [(t.start, t.end) for t in tracks] == [(100, 119), (120, 149)]


def _random_detections(seed, n=240):
    """Faces that drift, vanish for a few frames, and false positives; some detections lack 68 points."""
    rng = np.random.default_rng(seed)
    faces = [(rng.uniform(60, 400), rng.uniform(60, 400), rng.uniform(-2, 2)) for _ in range(3)]
    frames = []
    for i in range(n):
        dets = [det(x + v * i, y, score=float(rng.uniform(0.5, 1))) for x, y, v in faces if rng.random() < 0.85]
        if rng.random() < 0.1:
            dets.append(det(*rng.uniform(0, 500, 2)))
        for d in dets:
            if rng.random() < 0.7:
                d.lm68 = np.tile(d.lm5.mean(0), (68, 1)).astype(np.float32) + rng.normal(0, 3, (68, 2)).astype(np.float32)
        frames.append(dets)
    return frames


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_do_not_depend_on_when_they_are_taken(seed):
    """Taking rows every frame (the tracker drops what it no longer needs), every 7 or only at the end (it
    holds every observation) gives the same tracks, bit for bit, NaNs and missing 68 points included."""
    frames = _random_detections(seed)
    kw = dict(shots=[0, 100, 101], max_gap=4, min_len=12)
    whole = track_faces(frames, take_every=10**9, **kw)
    assert len(whole) >= 3
    for every in (1, 7):
        tracks = track_faces(frames, take_every=every, **kw)
        assert [t.track_id for t in tracks] == list(range(len(whole)))
        for a, b in zip(whole, tracks):
            for name in ("frames", "boxes", "scores", "lm5", "lm68", "interpolated"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_tracker_memory_does_not_grow_with_length():
    """One face for 3000 frames with short gaps: until the track is long enough to keep, the tracker holds its
    observations (min_len of them); after that only the last two, and every row but the last few has left."""
    tr = IoUTracker(max_gap=5, min_len=25)
    rows = 0
    for f in range(3000):
        tr.update(f, [] if f % 50 in (10, 11) else [det(100 + (f % 200) * 0.1, 100)])
        rows += sum(len(p) for p in tr.take())
        assert tr.held_observations <= (25 if f < 25 else 2)
    assert rows >= 3000 - 6
    assert rows + sum(len(p) for p in tr.take(final=True)) == 3000


def test_tracker_rejects_non_increasing_frames():
    tr = IoUTracker()
    tr.update(3, [det(10, 10)])
    with pytest.raises(ValueError):
        tr.update(3, [])


def test_shot_starts_formats():
    import pandas as pd

    assert shot_starts([(0, 10), (10, 20)]) == {10}
    assert shot_starts([0, 25, 50]) == {25, 50}
    assert shot_starts(pd.DataFrame({"start_frame": [0, 7], "end_frame": [7, 9]})) == {7}
    assert shot_starts(None) == set()


def test_iou_and_smoothing():
    iou = iou_matrix([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]])
    boxes = np.tile(np.array([10, 20, 50, 60], np.float32), (20, 1))
    boxes[7] += 40  # one-frame jump
    sm = smooth_boxes(boxes, 5)
    np.testing.assert_allclose(sm, np.tile([10, 20, 50, 60], (20, 1)))
    with pytest.raises(ValueError):
        smooth_boxes(boxes, 4)


# ---------------------------------------------------------------------------------------- alignment

def test_arcface_template_is_insightfaces():
    from insightface.utils import face_align

    np.testing.assert_array_equal(ARCFACE_DST, face_align.arcface_dst)
    np.testing.assert_allclose(estimate_norm(ARCFACE_DST), [[1, 0, 0], [0, 1, 0]], atol=1e-5)
    np.testing.assert_allclose(estimate_norm(ARCFACE_DST * 2, 224), [[1, 0, 0], [0, 1, 0]], atol=1e-5)
    # multiples of 128: ratio s/128 and an 8*ratio x shift
    np.testing.assert_allclose(estimate_norm(ARCFACE_DST, 128), [[1, 0, 8], [0, 1, 0]], atol=1e-5)
    with pytest.raises(ValueError):
        estimate_norm(ARCFACE_DST, 100)
    with pytest.raises(ValueError):
        estimate_norm(ARCFACE_DST[:4])


def _similarity(scale, angle_deg, tx, ty):
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx],
                     [scale * math.sin(a), scale * math.cos(a), ty]])


def test_alignment_recovers_similarity_and_never_reflects():
    rng = np.random.default_rng(0)
    M = _similarity(0.6, 33.0, 12.0, -4.0)
    lm5 = (ARCFACE_DST.astype(np.float64) - M[:, 2]) @ np.linalg.inv(M[:, :2]).T  # M(lm5) = template
    np.testing.assert_allclose(estimate_norm(lm5), M, atol=1e-4)
    mirrored = lm5 * [-1, 1] + rng.normal(0, 0.5, (5, 2))
    assert np.linalg.det(estimate_norm(mirrored)[:, :2]) > 0


def test_norm_crop_undoes_a_known_similarity():
    rng = np.random.default_rng(1)
    face = cv2.GaussianBlur(rng.uniform(0, 255, (112, 112, 3)).astype(np.float32), (0, 0), 2)
    face = face.astype(np.uint8)
    # place the 112 crop into a bigger frame by a similarity: frame = M(face)
    M = _similarity(2.2, -17.0, 150.0, 60.0)
    frame = cv2.warpAffine(face, M, (480, 400), flags=cv2.INTER_LINEAR, borderValue=0)
    lm5 = ARCFACE_DST @ M[:, :2].T + M[:, 2]
    Minv = estimate_norm(lm5)
    np.testing.assert_allclose(Minv, cv2.invertAffineTransform(M), atol=1e-6)
    restored = norm_crop(frame, lm5)
    assert restored.shape == (112, 112, 3)
    inner = (slice(8, -8), slice(8, -8))
    err = np.abs(restored[inner].astype(float) - face[inner].astype(float)).mean()
    assert err < 3.0, err
    # black outside the source frame
    far = norm_crop(frame, lm5 + 1000.0)
    assert far.max() == 0


# ---------------------------------------------------------------------------------------- landmarks

def test_lm5_from_lm68_and_mouth_open():
    lm68 = np.zeros((68, 2), np.float32)
    lm68[36:42] = [100, 100]
    lm68[42:48] = [140, 100]
    lm68[30] = [120, 125]
    lm68[48] = [105, 150]
    lm68[54] = [135, 150]
    lm68[[61, 62, 63]] = [[115, 145], [120, 145], [125, 145]]
    lm68[[65, 66, 67]] = [[125, 155], [120, 155], [115, 155]]
    lm5 = lm5_from_lm68(lm68)
    np.testing.assert_allclose(lm5, [[100, 100], [140, 100], [120, 125], [105, 150], [135, 150]])
    assert mouth_open(lm68) == pytest.approx(10 / 40)
    batch = mouth_open(np.stack([lm68, lm68]))
    assert batch.shape == (2,)
    x0, y0, x1, y1 = box_from_lm5(lm5)
    assert x0 < 100 and x1 > 140 and y0 < 100 and y1 > 150 and (x1 - x0) == pytest.approx(y1 - y0)


# --------------------------------------------------------------------------------- no face, schema

def _synthetic_chunks(n=40, size=192, chunk=16):
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (size, size, 3)).astype(np.float32), (0, 0), 6)
    for start in range(0, n, chunk):
        frames = np.stack([np.roll(base, 2 * i, axis=1) for i in range(start, min(n, start + chunk))])
        yield start, frames.astype(np.uint8)


def test_no_face_gives_empty_typed_table(dlib_detector):
    res = track_chunks(_synthetic_chunks(), dlib_detector, config=FaceTrackConfig())
    assert res.skip_reason == "no_face"
    s = res.summary
    assert s["n_frames"] == 40 and s["face_found_rate"] == 0.0 and s["n_tracks"] == 0
    assert s["detector"] == "dlib" and len(s["config_hash"]) == 16
    assert list(res.tracks.columns) == FACE_TRACKS_SCHEMA.names
    assert str(res.tracks["frame"].dtype) == "int32" and str(res.tracks["x0"].dtype) == "float32"
    table = res.to_arrow()
    assert table.schema.equals(FACE_TRACKS_SCHEMA) and table.num_rows == 0


class _ScriptedDetector:
    """Returns fixed detections per frame index (exercises track_chunks without a model)."""

    name = "scripted"

    def __init__(self, per_frame):
        self.per_frame = per_frame
        self._i = 0

    def info(self):
        return {"name": self.name}

    def detect(self, frames):
        out = self.per_frame[self._i:self._i + len(frames)]
        self._i += len(frames)
        return out


def test_track_chunks_rows_and_types():
    n = 40
    per_frame = []
    for i in range(n):
        d = det(60 + i, 80)
        lm68 = np.tile(d.lm5.mean(0), (68, 1)).astype(np.float32)
        lm68[36:42] -= [10, 0]
        lm68[42:48] += [10, 0]
        lm68[[65, 66, 67], 1] += i % 5  # mouth opening 0..4 px over 20 px eye distance
        d.lm68 = lm68
        per_frame.append([] if i in (20, 21) else [d])
    chunks = [(s, np.zeros((min(16, n - s), 8, 8, 3), np.uint8)) for s in range(0, n, 16)]
    res = track_chunks(chunks, _ScriptedDetector(per_frame), shots=[0, 30],
                       config=FaceTrackConfig(min_len=5))
    df = res.tracks
    assert res.summary["n_tracks"] == 2 and res.summary["face_found_rate"] == 1.0
    assert res.summary["frames_with_detection"] == n - 2 and res.summary["n_interpolated"] == 2
    assert df["frame"].tolist() == list(range(n))
    assert df.loc[df.frame < 30, "track_id"].eq(0).all() and df.loc[df.frame >= 30, "track_id"].eq(1).all()
    assert df.loc[df.frame.isin([20, 21]), "interpolated"].all()
    np.testing.assert_allclose(df["mouth_open"].iloc[:5], np.arange(5) / 20, atol=1e-6)
    assert len(df["lm5"].iloc[0]) == 10 and len(df["lm68"].iloc[0]) == 136
    t = res.to_arrow()
    assert t.schema.equals(FACE_TRACKS_SCHEMA) and t.num_rows == n


def _parquet_bytes(table) -> bytes:
    """A table's Parquet encoding: equal bytes, equal tables (NaNs included, which Table.equals refuses)."""
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_stream_writes_rows_as_they_become_final(tmp_path):
    """The table leaves FaceTrackStream a chunk or two behind the decode, in row groups of exactly the asked
    size, and the Parquet file written from it is the in-memory table with the summary in its metadata."""
    import pyarrow.parquet as pq

    from kling.atomic import read_parquet_metadata, write_parquet_atomic
    from kling.perception.faces.tracks import FaceTrackStream

    per_frame = _random_detections(7, n=400)
    cfg = FaceTrackConfig(min_len=12, max_gap=4, chunk_size=16)
    consumed = []

    def chunks():
        for s in range(0, 400, 16):
            consumed.append(s)
            yield s, np.zeros((16, 8, 8, 3), np.uint8)

    stream = FaceTrackStream(chunks(), _ScriptedDetector(per_frame), shots=[0, 150], config=cfg)
    lags = []
    for block in stream:
        decoded = consumed[-1] + 16
        assert block["frame"].max() < decoded
        lags.append(decoded - block["frame"].min())  # rows wait at most a chunk + min_len + max_gap frames
    assert len(lags) >= 20 and max(lags) <= 16 + 16 + 12 + 4 + 1

    whole = track_chunks([(s, np.zeros((16, 8, 8, 3), np.uint8)) for s in range(0, 400, 16)],
                         _ScriptedDetector(per_frame), shots=[0, 150], config=cfg)
    stream = FaceTrackStream(chunks(), _ScriptedDetector(per_frame), shots=[0, 150], config=cfg)
    path = write_parquet_atomic(stream.arrow_parts(100), tmp_path / "t.parquet", schema=FACE_TRACKS_SCHEMA,
                                metadata_at_end=lambda: {"summary": stream.summary})
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes[:-1] == [100] * (len(sizes) - 1) and 0 < sizes[-1] <= 100 and sum(sizes) == len(whole.tracks)
    assert _parquet_bytes(pq.read_table(path).combine_chunks().cast(FACE_TRACKS_SCHEMA)) == _parquet_bytes(whole.to_arrow())
    summary = read_parquet_metadata(path)["summary"]
    drop = ("elapsed_s", "frames_per_s")
    assert {k: v for k, v in summary.items() if k not in drop} == {
        k: v for k, v in whole.summary.items() if k not in drop}
    assert summary["n_rows"] == len(whole.tracks) and summary["n_tracks"] == whole.tracks["track_id"].nunique()


# ------------------------------------------------------------------------------------- real faces

def _read_rgb(path):
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


@pytest.mark.shared_data
def test_real_clips_one_face_every_frame(shared_data, dlib_detector):
    from kling.perception.faces.tracks import compute_face_tracks

    clips = sorted((shared_data / "clips").glob("*.mp4"))
    assert clips
    for clip in clips:
        res = compute_face_tracks(clip, detector=dlib_detector)
        s = res.summary
        assert s["n_frames"] == 200 and s["frames_with_detection"] == 200, (clip.name, s)
        assert s["n_tracks"] == 1 and s["face_found_rate"] == 1.0
        df = res.tracks
        lm5 = np.stack(df["lm5"].to_numpy()).reshape(-1, 5, 2)
        assert (lm5[:, 0, 0] < lm5[:, 1, 0]).all() and (lm5[:, 3, 0] < lm5[:, 4, 0]).all()
        assert (lm5[:, 2, 1] > lm5[:, 0, 1]).all() and (lm5[:, 3, 1] > lm5[:, 2, 1]).all()
        # a talking mouth opens and closes
        assert df["mouth_open"].std() > 0.02 and df["mouth_open"].max() > 0.1


@pytest.mark.shared_data
def test_real_identity_embeddings(shared_data, dlib_detector):
    from kling.perception.faces.embed import DlibFaceEncoder, descriptor_distance

    detector = dlib_detector
    enc = DlibFaceEncoder()
    assert len(enc.backbone_sha256) == 64
    e = {n: enc.embed_largest(_read_rgb(shared_data / "faces" / f"{n}.png"), detector)
         for n in ("happy", "sad", "people_0")}
    assert all(v is not None and v.shape == (128,) and v.dtype == np.float32 for v in e.values())
    same = descriptor_distance(e["happy"], e["sad"])
    assert same < descriptor_distance(e["happy"], e["people_0"])
    assert same < descriptor_distance(e["sad"], e["people_0"])
    assert same < 0.6  # dlib's same-person threshold


@pytest.mark.shared_data
def test_real_face_aligns_onto_template(shared_data, dlib_detector):
    img = _read_rgb(shared_data / "faces" / "happy.png")
    (d,) = dlib_detector.detect(img[None])[0]
    crop = norm_crop(img, d.lm5)
    # the aligned crop's own detection puts the eyes near the template's eyes
    big = cv2.resize(crop, (224, 224), interpolation=cv2.INTER_CUBIC)
    dets = DlibDetector(upsample=1).detect(big[None])[0]
    assert dets, "no face found in the aligned crop"
    np.testing.assert_allclose(dets[0].lm5[:2] / 2, ARCFACE_DST[:2], atol=6.0)


def test_unreadable_video_raises_media_error(tmp_path, dlib_detector):
    from kling.perception.faces.tracks import compute_face_tracks
    from kling.io.errors import MediaError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(MediaError):
        compute_face_tracks(bad, detector=dlib_detector)
