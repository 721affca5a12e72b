"""Per-clip quality signals for the candidate clips of one video, in one streaming pass.

Metrics (float64, NaN when not measurable), one row per candidate clip (see kling.curate.clips):
- sharpness: median over frames of the variance of the Laplacian (cv2, 3x3 aperture) of the grey face crop
  resized to ``crop_size`` x ``crop_size``, so the figure does not depend on the video's resolution;
- face_px / face_ratio: median box height in pixels / as a fraction of the frame height;
- abs_yaw, abs_pitch, abs_roll: median absolute head-pose angles (kling.perception.faces.pose), yaw_std, pitch_std
  their spread (standard deviation) over the clip;
- box_speed: median box-centre displacement per frame divided by the box height (scale-free camera or head
  motion); face_diff: median mean-absolute grey difference (0-1) between consecutive face crops (motion inside
  the face, plus whatever the box tracking does not follow);
- speech_ratio: fraction of the clip's frames with voice activity (0 when there is no VAD / no audio);
- interpolated_ratio: fraction of the clip's track rows that the tracker interpolated;
- duration_s: frames / fps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from kling.clock import FPS
from kling.curate.clips import DEFAULT_MIN_CLIP_FRAMES, METRIC_COLUMNS, candidate_clips
from kling.perception.faces.pose import head_pose_from_tracks
from kling.perception.shots import Shot

ID_COLUMNS = ["clip_id", "video_id", "shot", "track_id", "start_frame", "end_frame", "n_frames"]
QUALITY_COLUMNS = ID_COLUMNS + METRIC_COLUMNS


@dataclass(frozen=True)
class QualityConfig:
    fps: float = float(FPS)  # a float, as the config hash has always seen it
    crop_size: int = 112  # side of the square grey face crop that sharpness and face_diff are measured on
    stride: int = 1  # measure crops every `stride` frames (1 = every frame)
    min_clip_frames: int = DEFAULT_MIN_CLIP_FRAMES
    chunk_size: int = 32


def _resize(grey: np.ndarray, size: int) -> np.ndarray:
    shrink = grey.shape[0] >= size and grey.shape[1] >= size
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def face_crop_grey(frame: np.ndarray, box: Sequence[float], size: int) -> np.ndarray | None:
    """Grey face crop (size x size, uint8) of an RGB frame; None when the box hardly overlaps the frame."""
    h, w = frame.shape[:2]
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return _resize(cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY), size)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the Laplacian: the standard focus measure (higher = sharper)."""
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def sharpness(image: np.ndarray, size: int = 112) -> float:
    """Sharpness of a whole RGB or grey image on the same scale as the clip metric."""
    img = np.ascontiguousarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return laplacian_variance(_resize(img, size))


_TABLE_COLUMNS = ["frame", "track_id", "x0", "y0", "x1", "y1", "interpolated"]  # what the metrics read per row
_LANDMARK_COLUMNS = ["lm5", "lm68"]  # read only for the head pose, in batches (most of the table's bytes)
_POSE_BATCH_ROWS = 256  # = steps.ROW_GROUP_ROWS, the face-track row groups: one group decoded at a time


def _read_tracks(face_tracks) -> pd.DataFrame:
    """The face-track table as given, or, from a Parquet file, only its per-row scalar columns."""
    if isinstance(face_tracks, pd.DataFrame):
        return face_tracks
    names = pq.read_schema(face_tracks).names
    columns = [c for c in _TABLE_COLUMNS if c in names]
    return pd.read_parquet(face_tracks, columns=columns, use_threads=False)  # threads buy nothing on a few columns


def _clip_rows(face_tracks: pd.DataFrame, cands: pd.DataFrame) -> pd.DataFrame:
    """Face-track rows inside each candidate's span, with the candidate's position `cand` and the row's position
    in the face-track table `ft_row`, sorted by frame."""
    ft = face_tracks[["frame", "track_id", "x0", "y0", "x1", "y1"]
                     + [c for c in ("interpolated",) if c in face_tracks.columns]].copy()
    ft["ft_row"] = np.arange(len(ft))
    spans = cands[["track_id", "start_frame", "end_frame"]].reset_index(drop=True)
    spans["cand"] = np.arange(len(spans))
    m = ft.merge(spans, on="track_id", how="inner")
    m = m[(m["frame"] >= m["start_frame"]) & (m["frame"] < m["end_frame"])]
    m = m.drop_duplicates(["cand", "frame"]).sort_values(["frame", "cand"], kind="stable")
    return m.reset_index(drop=True)


def _track_pose(face_tracks, ft_rows: np.ndarray, width: int, height: int) -> np.ndarray:
    """(len(ft_rows), 3) head pose of the given rows of the face-track table (a DataFrame, or a Parquet file read
    in row batches of its landmark columns only, so memory does not grow with the video's length). The pose of
    a row depends on that row alone, so batching does not change it."""
    rows, inverse = np.unique(np.asarray(ft_rows, np.int64), return_inverse=True)
    if isinstance(face_tracks, pd.DataFrame):
        lm = [c for c in _LANDMARK_COLUMNS if c in face_tracks.columns]
        pose = head_pose_from_tracks(face_tracks.iloc[rows][lm], width, height)
        return pose[inverse]
    pose = np.full((len(rows), 3), np.nan)
    pf = pq.ParquetFile(face_tracks)
    lm = [c for c in _LANDMARK_COLUMNS if c in pf.schema_arrow.names]
    start = 0
    # single-threaded: reader threads cost ~8 MB of buffers here and save nothing on two columns
    for batch in pf.iter_batches(batch_size=_POSE_BATCH_ROWS, columns=lm, use_threads=False):
        lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
        if hi > lo:
            part = batch.to_pandas().iloc[rows[lo:hi] - start]
            pose[lo:hi] = head_pose_from_tracks(part, width, height)
        start += batch.num_rows
    return pose[inverse]


def _median(values) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def _std(values) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(np.std(v)) if len(v) >= 2 else float("nan")


def compute_quality(
    video_path: str | Path,
    face_tracks: pd.DataFrame | str | Path,
    shots: Sequence[Shot],
    vad_frames: np.ndarray | None,
    config: QualityConfig = QualityConfig(),
    video_id: str | None = None,
    candidates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Quality metrics per candidate clip (columns QUALITY_COLUMNS), streaming the normalised clip once.

    ``face_tracks`` is the face-track table of the same normalised clip (boxes in its pixels, 25 fps frames), as
    a DataFrame or the path of its Parquet file (then read by columns and batches, never whole);
    ``vad_frames`` a per-frame bool/probability array (>= 0.5 counts as speech) or None for no audio.
    ``candidates`` (from clips.candidate_clips) is computed here when not given; ``video_id`` defaults to the
    file stem.
    """
    from kling.io.decode import iter_frames

    video_id = video_id or Path(video_path).stem
    tracks = _read_tracks(face_tracks)
    cands = candidates if candidates is not None else candidate_clips(
        video_id, tracks, shots, config.min_clip_frames)
    if len(cands) == 0:
        return pd.DataFrame(columns=QUALITY_COLUMNS)
    cands = cands.reset_index(drop=True)
    rows = _clip_rows(tracks, cands)
    del tracks  # the rows inside clips are all that is used from here on
    n_c = len(cands)
    sharp: list[list[float]] = [[] for _ in range(n_c)]
    diffs: list[list[float]] = [[] for _ in range(n_c)]
    # cand -> [frame, crop] of its last measured crop; the crop array is reused (copied into) rather than
    # allocated per frame, and dropped once the clip has ended, so it neither fragments the heap nor piles up
    prev: dict[int, list] = {}
    starts = cands["start_frame"].to_numpy(np.int64)
    ends = cands["end_frame"].to_numpy(np.int64)
    frame_col = rows["frame"].to_numpy(np.int64)
    cand_col = rows["cand"].to_numpy(np.int64)
    boxes = rows[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
    width = height = None
    stride = max(1, int(config.stride))
    last_needed = int(frame_col.max()) if len(frame_col) else -1
    for chunk in iter_frames(video_path, fps=config.fps, chunk_size=config.chunk_size):
        height, width = chunk.frames.shape[1:3]
        s, n = chunk.start, len(chunk.frames)
        lo, hi = np.searchsorted(frame_col, [s, s + n])
        for r in range(lo, hi):
            f, c = int(frame_col[r]), int(cand_col[r])
            if (f - starts[c]) % stride:
                continue
            crop = face_crop_grey(chunk.frames[f - s], boxes[r], config.crop_size)
            if crop is None:
                continue
            sharp[c].append(laplacian_variance(crop))
            last = prev.get(c)
            if last is None:
                last = prev[c] = [None, np.empty(crop.shape, np.int16)]
            elif f - last[0] == stride:
                diffs[c].append(float(np.abs(crop.astype(np.int16) - last[1]).mean()) / 255.0)
            last[0] = f
            np.copyto(last[1], crop, casting="safe")
        for c in [c for c in prev if ends[c] <= s + n]:  # clips that ended in this chunk
            del prev[c]
        if s + n > last_needed:  # nothing after this chunk is in any clip: stop decoding early
            break
        del chunk  # free this chunk's frames before the decoder builds the next one, not after
    if width is None:
        raise ValueError(f"{video_path}: no frame decoded")

    # Table-only metrics, vectorised per candidate.
    pose = _track_pose(face_tracks, rows["ft_row"].to_numpy(), width, height) if len(rows) else np.zeros((0, 3))
    h_box = boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    vad = None if vad_frames is None else np.asarray(vad_frames, np.float64)
    interp_col = rows["interpolated"].to_numpy(bool) if "interpolated" in rows.columns else None
    out = []
    for c, cand in cands.iterrows():
        sel = np.flatnonzero(cand_col == c)
        fr = frame_col[sel]
        consecutive = np.diff(fr) == 1
        disp = np.hypot(np.diff(cx[sel]), np.diff(cy[sel]))[consecutive]
        size = ((h_box[sel][1:] + h_box[sel][:-1]) / 2)[consecutive]
        a, b = int(cand["start_frame"]), int(cand["end_frame"])
        if vad is None:
            speech_ratio = 0.0
        else:
            seg = vad[a:min(b, len(vad))]
            speech_ratio = float((seg >= 0.5).sum()) / (b - a)  # frames past the audio count as silent
        yaw, pitch, roll = pose[sel, 0], pose[sel, 1], pose[sel, 2]
        interp = interp_col[sel] if interp_col is not None else np.zeros(0)
        face_px = _median(h_box[sel])
        out.append({
            **{k: cand[k] for k in ID_COLUMNS},
            "duration_s": (b - a) / config.fps,
            "sharpness": _median(sharp[c]),
            "face_px": face_px,
            "face_ratio": face_px / height,
            "abs_yaw": _median(np.abs(yaw)),
            "abs_pitch": _median(np.abs(pitch)),
            "abs_roll": _median(np.abs(roll)),
            "yaw_std": _std(yaw),
            "pitch_std": _std(pitch),
            "box_speed": _median(disp / np.maximum(size, 1e-6)),
            "face_diff": _median(diffs[c]),
            "speech_ratio": speech_ratio,
            "interpolated_ratio": float(interp.mean()) if len(interp) else float("nan"),
        })
    df = pd.DataFrame(out, columns=QUALITY_COLUMNS)
    return df.astype({"shot": "int32", "track_id": "int32", "start_frame": "int32", "end_frame": "int32",
                      "n_frames": "int32", **{m: "float64" for m in METRIC_COLUMNS}})
