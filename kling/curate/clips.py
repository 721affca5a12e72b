"""Candidate clips (a face track's run inside one shot), their ids, and the curated-manifest schema.

A candidate clip is the longest run of consecutive frames of one face track inside one shot; shorter runs of
the same (shot, track) are dropped because a clip id names one (shot, track) pair. Runs shorter than
``min_frames`` are not candidates at all (fragments at cuts or detector flicker); duration thresholds for
training belong to the filters, which record "too_short" rather than dropping silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from kling.clock import FPS
from kling.perception.shots import Shot

DEFAULT_MIN_CLIP_FRAMES = 8

CANDIDATE_COLUMNS = ["clip_id", "video_id", "shot", "track_id", "start_frame", "end_frame", "n_frames"]


def clip_id(video_id: str, shot: int, track_id: int) -> str:
    return f"{video_id}-s{int(shot)}-t{int(track_id)}"


def _longest_run(frames: np.ndarray) -> tuple[int, int]:
    """(start, end_exclusive) of the longest run of consecutive integers in sorted unique ``frames``."""
    breaks = np.flatnonzero(np.diff(frames) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks + 1, [len(frames)]])
    k = int(np.argmax(ends - starts))  # first longest run on ties
    return int(frames[starts[k]]), int(frames[ends[k] - 1]) + 1


def candidate_clips(
    video_id: str,
    face_tracks: pd.DataFrame,
    shots: Sequence[Shot],
    min_frames: int = DEFAULT_MIN_CLIP_FRAMES,
) -> pd.DataFrame:
    """One row per candidate clip: clip_id, video_id, shot, track_id, start_frame, end_frame (exclusive),
    n_frames; sorted by shot then track."""
    rows = []
    if face_tracks is not None and len(face_tracks) and len(shots):
        frames_all = face_tracks["frame"].to_numpy(np.int64)
        tracks_all = face_tracks["track_id"].to_numpy(np.int64)
        starts = np.array([s.start_frame for s in shots], np.int64)
        ends = np.array([s.end_frame for s in shots], np.int64)
        shot_of = np.searchsorted(starts, frames_all, side="right") - 1
        inside = (shot_of >= 0) & (frames_all < ends[np.clip(shot_of, 0, None)])
        df = pd.DataFrame({"frame": frames_all[inside], "track_id": tracks_all[inside],
                           "shot_pos": shot_of[inside]})
        for (pos, tid), g in df.groupby(["shot_pos", "track_id"], sort=True):
            a, b = _longest_run(np.unique(g["frame"].to_numpy()))
            if b - a >= min_frames:
                shot = shots[int(pos)].index
                rows.append((clip_id(video_id, shot, tid), video_id, shot, int(tid), a, b, b - a))
    out = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    return out.astype({"shot": "int32", "track_id": "int32", "start_frame": "int32", "end_frame": "int32",
                       "n_frames": "int32"})


# Quality metric columns (kling.curate.quality) in manifest order; float64, NaN when not measurable.
METRIC_COLUMNS = [
    "duration_s",
    "sharpness",
    "face_px",
    "face_ratio",
    "abs_yaw",
    "abs_pitch",
    "abs_roll",
    "yaw_std",
    "pitch_std",
    "box_speed",
    "face_diff",
    "speech_ratio",
    "interpolated_ratio",
]

CURATED_MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string()),
        pa.field("shot", pa.int32()),  # null for a rejected video
        pa.field("track_id", pa.int32()),
        pa.field("start_frame", pa.int32()),  # 25 fps frame index, end exclusive
        pa.field("end_frame", pa.int32()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("kept", pa.bool_(), nullable=False),
        pa.field("reject_reasons", pa.list_(pa.string()), nullable=False),
        pa.field("reject_detail", pa.string()),
        *[pa.field(c, pa.float64()) for c in METRIC_COLUMNS],
        # lip-sync filter (kling.curate.lipsync): null where the clip was not scored
        pa.field("sync_c", pa.float64()),
        pa.field("sync_d", pa.float64()),
        pa.field("av_offset", pa.int32()),
        pa.field("shift_audio_frames", pa.int32()),  # offset correction to apply to the audio, 0 = none
        pa.field("sync_backbone", pa.string()),
        pa.field("config_hash", pa.string()),
    ],
    metadata={b"kling.schema": b"curated_manifest/1"},
)


def manifest_table(df: pd.DataFrame, source_path: str | None = None, config_hash: str | None = None,
                   fps: float = FPS) -> pa.Table:
    """Conform a frame of candidate/rejected rows to CURATED_MANIFEST_SCHEMA.

    Missing columns become nulls (metrics NaN), start_s/end_s are derived from frames at ``fps`` when absent,
    ``source_path``/``config_hash`` fill rows that lack them; extra columns are dropped.
    """
    missing = [c for c in ("clip_id", "video_id", "kept") if c not in df.columns]
    if missing:
        raise ValueError(f"manifest rows need columns {missing}")
    df = df.copy()
    n = len(df)
    if "source_path" not in df.columns:
        df["source_path"] = source_path
    elif source_path is not None:
        df["source_path"] = df["source_path"].fillna(source_path)
    if "config_hash" not in df.columns:
        df["config_hash"] = config_hash
    elif config_hash is not None:
        df["config_hash"] = df["config_hash"].fillna(config_hash)
    for col, src in (("start_s", "start_frame"), ("end_s", "end_frame")):
        secs = pd.to_numeric(df[col], errors="coerce") if col in df.columns else pd.Series(np.nan, index=df.index)
        if src in df.columns:  # derive from frames where not given (rows of rejected videos have neither)
            secs = secs.fillna(pd.to_numeric(df[src], errors="coerce").astype("float64") / fps)
        df[col] = secs.astype("float64")
    if "reject_reasons" not in df.columns:
        df["reject_reasons"] = [[] for _ in range(n)]
    df["reject_reasons"] = [list(r) if r is not None else [] for r in df["reject_reasons"]]
    arrays = []
    for field in CURATED_MANIFEST_SCHEMA:
        if field.name in df.columns:
            col = df[field.name]
            if pa.types.is_integer(field.type):
                values = [None if pd.isna(v) else int(v) for v in col]
            elif pa.types.is_floating(field.type):
                values = [np.nan if v is None or pd.isna(v) else float(v) for v in col]
            elif pa.types.is_boolean(field.type):
                values = [bool(v) for v in col]
            elif pa.types.is_list(field.type):
                values = [[str(x) for x in v] for v in col]
            else:
                values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in col]
            arrays.append(pa.array(values, type=field.type))
        elif pa.types.is_floating(field.type):
            arrays.append(pa.array(np.full(n, np.nan), type=field.type))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=CURATED_MANIFEST_SCHEMA)
