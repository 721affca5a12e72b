"""Per-video face tracks: decode (streamed, batched) -> detect -> track -> one table row per face per frame.

`stream_face_tracks` is the curation entry point (a Dagster asset maps it over clips and writes the
table as it comes); `compute_face_tracks` gives the whole table in memory; `shot_aware_tracks` is the one
table every metric reads (tracks split at scene cuts found in the same decode). Frames are taken on the 25 fps
constant-rate timeline of kling.io.decode.iter_frames; decoding of the next chunk overlaps detection of
the current one. Streamed, memory is bounded by the chunk size and the tracker's short horizon, whatever
the video's length.

A video with no face gives an empty table with the full schema and face_found_rate 0; the caller
records the skip (`FaceTrackResult.skip_reason`). Unreadable media raises kling.io.errors.MediaError.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from kling.clock import FPS
from kling.perception.faces.detect import load_detector
from kling.perception.faces.detection import FaceDetector
from kling.perception.faces.landmarks import mouth_open
from kling.perception.faces.tracker import IoUTracker, Track, shot_starts
from kling.hashing import config_hash

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "face_tracks/1"

FACE_TRACKS_SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("track_id", pa.int32()),
        ("x0", pa.float32()),
        ("y0", pa.float32()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("score", pa.float32()),
        ("lm5", pa.list_(pa.float32(), 10)),
        ("lm68", pa.list_(pa.float32(), 136)),
        ("mouth_open", pa.float32()),
        ("interpolated", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class FaceTrackConfig:
    """Everything that changes the output (hashed into the summary's config_hash)."""

    detector: str = "auto"  # "auto" (scrfd if its weights resolve, else dlib), "dlib", "scrfd"
    fps: float = float(FPS)  # a float, as the config hash has always seen it
    chunk_size: int = 32  # frames decoded and detected per batch
    max_side: int | None = None  # decode size cap; None = source resolution (boxes in source pixels)
    detect_side: int = 320  # dlib: long side of the copy the HOG detector runs on
    upsample: int = 0  # dlib: HOG pyramid upsampling (1 finds faces half as large, 4x slower)
    dlib_min_score: float = 0.0
    scrfd_input_size: int = 640
    scrfd_det_thresh: float = 0.5
    landmarks68: bool = True  # 68 points (mouth opening); dlib shape predictor at full resolution
    iou_threshold: float = 0.3
    max_gap: int = 5  # frames a track may miss and still be joined (gap filled by interpolation)
    min_len: int = FPS  # frames; shorter tracks are dropped (1 s)
    prefetch: bool = True  # decode the next chunk in a thread while detecting this one


@dataclass
class FaceTrackResult:
    tracks: pd.DataFrame
    summary: dict = field(default_factory=dict)

    @property
    def skip_reason(self) -> str | None:
        return "no_face" if len(self.tracks) == 0 else None

    def to_arrow(self) -> pa.Table:
        """The table with its exact Arrow schema (also when empty), ready for write_parquet_atomic."""
        df = self.tracks
        cols = {}
        for f in FACE_TRACKS_SCHEMA:
            if f.name in ("lm5", "lm68"):
                cols[f.name] = pa.array(
                    [None if v is None else np.asarray(v, np.float32) for v in df[f.name]], type=f.type
                )
            else:
                cols[f.name] = pa.array(df[f.name].to_numpy(), type=f.type)
        return pa.Table.from_pydict(cols, schema=FACE_TRACKS_SCHEMA)


def detector_for(config: FaceTrackConfig, weights_dir: str | Path | None = None) -> FaceDetector:
    """The detector a config names, with the config's parameters (kling.perception.faces.detect.load_detector
    chooses and caches it)."""
    return load_detector(config.detector, weights_dir, **detector_params(config))


def tracks_config_hash(config: FaceTrackConfig, detector: FaceDetector) -> str:
    """The summary's config_hash: the config and the detector's identity (name, parameters, weights). Known
    before any frame is decoded, so a cache of tables can be keyed by it."""
    info = detector.info() if hasattr(detector, "info") else {"name": getattr(detector, "name", "?")}
    return config_hash({"config": dataclasses.asdict(config), "detector": info})


def detector_params(config: FaceTrackConfig) -> dict:
    """load_detector's parameters from a config (each detector takes its own)."""
    return {"detect_side": config.detect_side, "upsample": config.upsample, "min_score": config.dlib_min_score,
            "input_size": config.scrfd_input_size, "det_thresh": config.scrfd_det_thresh,
            "landmarks": config.landmarks68}


def _prefetch(it: Iterable, depth: int = 2) -> Iterator:
    """Run an iterator in a background thread (PyAV decoding releases the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def worker():
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while th.is_alive():  # unblock a worker waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(timeout=0.05)


def tracks_to_frame(tracks: list[Track]) -> pd.DataFrame:
    """One row per (frame, track), sorted by frame then track_id, typed as FACE_TRACKS_SCHEMA."""
    if not tracks:
        return _empty_frame()
    frame = np.concatenate([t.frames for t in tracks]).astype(np.int32)
    tid = np.concatenate([np.full(len(t), t.track_id) for t in tracks]).astype(np.int32)
    boxes = np.concatenate([t.boxes for t in tracks]).astype(np.float32)
    lm5 = np.concatenate([t.lm5.reshape(len(t), 10) for t in tracks]).astype(np.float32)
    lm68: list = []
    mouth: list = []
    for t in tracks:
        if t.lm68 is None:
            lm68 += [None] * len(t)
            mouth.append(np.full(len(t), np.nan, np.float32))
        else:
            flat = t.lm68.reshape(len(t), 136)
            lm68 += [None if np.isnan(r).any() else r for r in flat]
            mouth.append(np.asarray(mouth_open(t.lm68), np.float32).reshape(len(t)))
    df = pd.DataFrame(
        {
            "frame": frame,
            "track_id": tid,
            "x0": boxes[:, 0],
            "y0": boxes[:, 1],
            "x1": boxes[:, 2],
            "y1": boxes[:, 3],
            "score": np.concatenate([t.scores for t in tracks]).astype(np.float32),
            "lm5": list(lm5),
            "lm68": lm68,
            "mouth_open": np.concatenate(mouth).astype(np.float32),
            "interpolated": np.concatenate([t.interpolated for t in tracks]).astype(bool),
        }
    )
    return df.sort_values(["frame", "track_id"], kind="stable").reset_index(drop=True)


def _empty_frame() -> pd.DataFrame:
    dtypes = {"frame": "int32", "track_id": "int32", "x0": "float32", "y0": "float32",
              "x1": "float32", "y1": "float32", "score": "float32", "lm5": "object",
              "lm68": "object", "mouth_open": "float32", "interpolated": "bool"}
    return pd.DataFrame({k: pd.Series([], dtype=v) for k, v in dtypes.items()})


class FaceTrackStream:
    """Detect and track over frame chunks, giving the face-track table block by block as its rows become
    final, in table order (frame, then track_id). The streaming core of compute_face_tracks.

    `chunks`: objects with `.frames` (n,H,W,3) and `.start`, or (start, frames) pairs. Iterating yields
    DataFrames typed like tracks_to_frame; `summary` is complete once the iteration ends. Memory does not grow
    with the video's length: a block leaves once no later frame can change it (see IoUTracker).

    `shot_detector` (a kling.perception.shots.ShotDetector, instead of `shots`) finds the cuts in the same pass:
    a frame's detections are then tracked once no later frame can put a cut before it (ShotDetector.settled,
    a frame behind except across a merged flash), which gives exactly the tracks of a separate shot pass
    followed by this one."""

    def __init__(self, chunks: Iterable, detector: FaceDetector, shots=None,
                 config: FaceTrackConfig = FaceTrackConfig(), shot_detector=None):
        if shot_detector is not None and shots is not None:
            raise ValueError("give either shots or a shot_detector, not both")
        self.chunks, self.detector, self.shots, self.config = chunks, detector, shots, config
        self.shot_detector = shot_detector
        self.summary: dict | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        t0 = time.perf_counter()
        config, shot_detector = self.config, self.shot_detector
        cuts = shot_starts(self.shots)
        tracker = IoUTracker(config.iou_threshold, config.max_gap, config.min_len)
        counts = _RowCounts()
        pending: deque[tuple[int, list]] = deque()  # (frame, detections) waiting for their shot cuts
        n_frames = frames_with_detection = 0
        frame_size = None
        for chunk in self.chunks:
            start, frames = (chunk.start, chunk.frames) if hasattr(chunk, "frames") else chunk
            if len(frames) == 0:
                continue
            frame_size = frames.shape[1:3]
            for i, dets in enumerate(self.detector.detect(frames)):
                frames_with_detection += bool(dets)
                pending.append((int(start) + i, dets))
            n_frames = max(n_frames, int(start) + len(frames))
            if shot_detector is not None:
                shot_detector.update(frames, int(start))
                settled = shot_detector.settled
                cuts = shot_starts(shot_detector.finish(settled))
            else:
                settled = n_frames
            while pending and pending[0][0] < settled:
                _track_step(tracker, *pending.popleft(), cuts)
            yield from counts.block(tracker.take())
        if shot_detector is not None:
            cuts = shot_starts(shot_detector.finish(n_frames))
        while pending:
            _track_step(tracker, *pending.popleft(), cuts)
        yield from counts.block(tracker.take(final=True))
        elapsed = time.perf_counter() - t0
        detector = self.detector
        info = detector.info() if hasattr(detector, "info") else {"name": getattr(detector, "name", "?")}
        self.summary = {
            "protocol_version": PROTOCOL_VERSION,
            "n_frames": n_frames,
            "frame_height": None if frame_size is None else int(frame_size[0]),
            "frame_width": None if frame_size is None else int(frame_size[1]),
            "frames_with_face": counts.frames_with_face,
            "frames_with_detection": frames_with_detection,
            "face_found_rate": counts.frames_with_face / n_frames if n_frames else 0.0,
            "n_tracks": len(counts.track_ids),
            "n_rows": counts.rows,
            "n_interpolated": counts.interpolated,
            "n_shot_cuts": len(cuts),
            "detector": info.get("name", getattr(detector, "name", "?")),
            "detector_info": info,
            "config": dataclasses.asdict(config),
            "config_hash": tracks_config_hash(config, detector),
            "elapsed_s": round(elapsed, 4),
            "frames_per_s": round(n_frames / elapsed, 2) if elapsed > 0 else None,
        }

    @property
    def skip_reason(self) -> str | None:
        return None if self.summary is None or self.summary["n_rows"] else "no_face"

    def arrow_parts(self, rows: int) -> Iterator[pa.Table]:
        """The table as Arrow tables of exactly `rows` rows (the last one shorter), for a Parquet writer."""
        held: list[pd.DataFrame] = []
        n_held = 0
        for block in self:
            held.append(block)
            n_held += len(block)
            if n_held < rows:
                continue
            joined = pd.concat(held, ignore_index=True)
            cut = n_held - n_held % rows
            for i in range(0, cut, rows):
                yield FaceTrackResult(joined.iloc[i : i + rows]).to_arrow()
            held, n_held = [joined.iloc[cut:]], n_held - cut
        if n_held:
            yield FaceTrackResult(pd.concat(held, ignore_index=True)).to_arrow()


class _RowCounts:
    """The summary's row counts, kept block by block (blocks cover disjoint frame ranges)."""

    def __init__(self):
        self.rows = self.interpolated = self.frames_with_face = 0
        self.track_ids: set[int] = set()

    def block(self, pieces: list[Track]) -> Iterator[pd.DataFrame]:
        if not pieces:
            return
        df = tracks_to_frame(pieces)
        self.rows += len(df)
        self.interpolated += int(df["interpolated"].sum())
        self.frames_with_face += int(df["frame"].nunique())
        self.track_ids.update(df["track_id"].unique().tolist())
        yield df


def _track_step(tracker: IoUTracker, frame: int, dets, cuts: set[int]) -> None:
    if frame in cuts:
        tracker.cut()
    tracker.update(frame, dets)


def track_chunks(
    chunks: Iterable,
    detector: FaceDetector,
    shots=None,
    config: FaceTrackConfig = FaceTrackConfig(),
    shot_detector=None,
) -> FaceTrackResult:
    """The whole face-track table of frame chunks in memory (see FaceTrackStream)."""
    return _collect(FaceTrackStream(chunks, detector, shots=shots, config=config, shot_detector=shot_detector))


def _collect(stream: FaceTrackStream) -> FaceTrackResult:
    blocks = list(stream)
    df = pd.concat(blocks, ignore_index=True) if blocks else _empty_frame()
    return FaceTrackResult(df, stream.summary)


def stream_face_tracks(
    video_path: str | Path,
    shots=None,
    detector: FaceDetector | None = None,
    config: FaceTrackConfig = FaceTrackConfig(),
    weights_dir: str | Path | None = None,
    shot_detector=None,
) -> FaceTrackStream:
    """Face tracks of one video, block by block (see FaceTrackStream; nothing is decoded until it is
    iterated). `shots`: Shot objects, (start, end) pairs, start frames or a DataFrame with start_frame;
    tracks never span a shot start. `shot_detector`: find the shots in the same decode instead.
    `detector` overrides config.detector (its name and parameters still go into the summary)."""
    from kling.io.decode import iter_frames

    detector = detector or detector_for(config, weights_dir)
    chunks = iter_frames(video_path, fps=config.fps, chunk_size=config.chunk_size, max_side=config.max_side)
    if config.prefetch:
        chunks = _prefetch(chunks)
    return FaceTrackStream(chunks, detector, shots=shots, config=config, shot_detector=shot_detector)


def compute_face_tracks(video_path: str | Path, **options) -> FaceTrackResult:
    """The whole face-track table of one video in memory; `options` as stream_face_tracks."""
    result = _collect(stream_face_tracks(video_path, **options))
    result.summary["video_path"] = str(video_path)
    return result


def shot_aware_tracks(
    video_path: str | Path,
    detector: str | FaceDetector | None = None,
    config: FaceTrackConfig = FaceTrackConfig(),
    weights_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The face tracks every metric reads (lip sync, identity, adherence), the command line's and the
    evaluation suite's alike: tracks that never span a scene cut, with the shots found in the same decode
    (kling.perception.shots.ShotDetector). Across a cut the IoU tracker would otherwise join two people framed
    alike into one track, which lip sync would score as one speaker and identity give to one character.

    `detector`: a detector, or a name for load_detector (None: config.detector), with config's parameters."""
    from kling.perception.shots import ShotDetector

    if detector is None or isinstance(detector, str):
        detector = load_detector(detector or config.detector, weights_dir, **detector_params(config))
    result = compute_face_tracks(video_path, detector=detector, config=config, shot_detector=ShotDetector())
    result.tracks.attrs["face_track_summary"] = result.summary  # n_frames: why a video has no track
    return result.tracks


def no_track_reason(summary: dict | None, config: FaceTrackConfig = FaceTrackConfig()) -> tuple[str, str]:
    """Why a video has no face track: too short for a track at all (``too_short``, with the minimum), or no
    face seen long enough (``no_face``, with what was seen). Curation and every metric that needs faces say
    the same."""
    summary = summary or {}
    n, need = int(summary.get("n_frames") or 0), int(config.min_len)
    if "n_frames" in summary and n < need:
        return "too_short", (f"{n} frame{'' if n == 1 else 's'} < {need} needed by face_tracks "
                             f"(min_len, {need / config.fps:.2f} s at {config.fps:g} fps)")
    seen = int(summary.get("frames_with_detection") or 0)
    if seen == 0:
        return "no_face", f"no face detected in any of {n} frames" if n else "no face track"
    return "no_face", f"faces detected in {seen} of {n} frames, but no track lasted {need} frames (face_tracks min_len)"
