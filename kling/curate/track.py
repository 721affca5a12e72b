"""Face tracking by box overlap, online (frame by frame) so that memory stays flat in video length.

Each frame's detections are matched to the open tracks by Hungarian assignment on IoU between the
detection and the track's predicted box (last box moved by the track's recent per-frame velocity,
which keeps two crossing faces apart). A track missing for up to `max_gap` frames is kept open and,
when it is matched again, the gap is filled by linear interpolation (rows flagged `interpolated`,
score NaN). Tracks close at shot boundaries, after `max_gap` misses, or at the end; closed tracks
shorter than `min_len` frames (interpolated frames included) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy.ndimage import median_filter
from scipy.optimize import linear_sum_assignment

from kling.curate.detect import Detection


@dataclass
class Track:
    """One face over consecutive frames (gaps filled). Arrays are aligned with `frames`."""

    track_id: int
    frames: np.ndarray  # (n,) int64, consecutive
    boxes: np.ndarray  # (n, 4) float32 x0, y0, x1, y1
    scores: np.ndarray  # (n,) float32, NaN where interpolated
    lm5: np.ndarray  # (n, 5, 2) float32
    lm68: np.ndarray | None  # (n, 68, 2) float32, NaN rows where a detection had none; None if never
    interpolated: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:
        """Last frame (inclusive)."""
        return int(self.frames[-1])


@dataclass
class _Open:
    track_id: int
    frames: list[int] = field(default_factory=list)
    dets: list[Detection] = field(default_factory=list)

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    def predict(self, frame: int) -> np.ndarray:
        """Box expected at `frame`: last box plus velocity from the last two observations."""
        box = self.dets[-1].box.astype(np.float64)
        if len(self.dets) >= 2:
            dt = self.frames[-1] - self.frames[-2]
            vel = (box - self.dets[-2].box) / max(dt, 1)
            box = box + vel * (frame - self.frames[-1])
        return box


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of boxes (x0, y0, x1, y1)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _finish(t: _Open) -> Track:
    """Materialise an open track, filling gaps by linear interpolation."""
    obs = np.asarray(t.frames)
    frames = np.arange(obs[0], obs[-1] + 1)
    has68 = any(d.lm68 is not None for d in t.dets)
    boxes = np.stack([d.box for d in t.dets]).astype(np.float64)
    lm5 = np.stack([d.lm5 for d in t.dets]).astype(np.float64).reshape(len(obs), -1)
    cols = [boxes, lm5]
    if has68:
        lm68 = np.stack([d.lm68 if d.lm68 is not None else np.full((68, 2), np.nan) for d in t.dets])
        cols.append(lm68.reshape(len(obs), -1).astype(np.float64))
    data = np.concatenate(cols, axis=1)
    filled = np.empty((len(frames), data.shape[1]))
    for j in range(data.shape[1]):
        filled[:, j] = np.interp(frames, obs, data[:, j])
    interpolated = ~np.isin(frames, obs)
    scores = np.full(len(frames), np.nan, dtype=np.float32)
    scores[obs - obs[0]] = [d.score for d in t.dets]
    return Track(
        track_id=t.track_id,
        frames=frames.astype(np.int64),
        boxes=filled[:, :4].astype(np.float32),
        scores=scores,
        lm5=filled[:, 4:14].reshape(-1, 5, 2).astype(np.float32),
        lm68=filled[:, 14:].reshape(-1, 68, 2).astype(np.float32) if has68 else None,
        interpolated=interpolated,
    )


class IoUTracker:
    """Online IoU tracker. Feed frames in increasing order with `update`; call `flush` at the end.

    Both return the tracks that closed (already filtered by min_len), in closing order.
    """

    def __init__(self, iou_threshold: float = 0.3, max_gap: int = 5, min_len: int = 1):
        self.iou_threshold = float(iou_threshold)
        self.max_gap = int(max_gap)
        self.min_len = int(min_len)
        self._open: list[_Open] = []
        self._next_id = 0
        self._last_frame: int | None = None

    def _close(self, tracks: Iterable[_Open]) -> list[Track]:
        out = []
        for t in tracks:
            if t.last_frame - t.frames[0] + 1 >= self.min_len:
                out.append(_finish(t))
        return out

    def cut(self) -> list[Track]:
        """Shot boundary: close every open track so that none spans the cut."""
        closed, self._open = self._open, []
        return self._close(closed)

    def update(self, frame: int, detections: Sequence[Detection]) -> list[Track]:
        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueError(f"frames must increase: got {frame} after {self._last_frame}")
        self._last_frame = frame
        # Close tracks that can no longer be matched (gap would exceed max_gap).
        stale = [t for t in self._open if frame - t.last_frame - 1 > self.max_gap]
        self._open = [t for t in self._open if frame - t.last_frame - 1 <= self.max_gap]
        closed = self._close(stale)

        unmatched = list(range(len(detections)))
        if self._open and detections:
            pred = np.stack([t.predict(frame) for t in self._open])
            iou = iou_matrix(pred, np.stack([d.box for d in detections]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.iou_threshold:
                    self._open[r].frames.append(frame)
                    self._open[r].dets.append(detections[c])
                    unmatched.remove(c)
        for c in unmatched:
            self._open.append(_Open(self._next_id, [frame], [detections[c]]))
            self._next_id += 1
        return closed

    def flush(self) -> list[Track]:
        return self.cut()


def shot_starts(shots) -> set[int]:
    """Frames where a new shot starts (> 0), from Shot objects (start_frame), (start, end) pairs,
    plain start frames, or a DataFrame with a start_frame / start column."""
    if shots is None:
        return set()
    if hasattr(shots, "columns"):  # pandas DataFrame
        col = "start_frame" if "start_frame" in shots.columns else "start"
        values = shots[col].tolist()
    else:
        values = []
        for s in shots:
            if hasattr(s, "start_frame"):
                values.append(s.start_frame)
            elif isinstance(s, (tuple, list, np.ndarray)):
                values.append(s[0])
            else:
                values.append(s)
    return {int(v) for v in values if int(v) > 0}


def track_faces(
    detections: Sequence[Sequence[Detection]],
    start_frame: int = 0,
    shots=None,
    iou_threshold: float = 0.3,
    max_gap: int = 5,
    min_len: int = 1,
) -> list[Track]:
    """Track a whole list of per-frame detections (frame i = start_frame + i); ids in start order."""
    cuts = shot_starts(shots)
    tracker = IoUTracker(iou_threshold, max_gap, min_len)
    tracks: list[Track] = []
    for i, dets in enumerate(detections):
        frame = start_frame + i
        if frame in cuts:
            tracks += tracker.cut()
        tracks += tracker.update(frame, dets)
    tracks += tracker.flush()
    return renumber(tracks)


def renumber(tracks: list[Track]) -> list[Track]:
    """Sort by (start frame, creation order) and number 0..n-1."""
    tracks = sorted(tracks, key=lambda t: (t.start, t.track_id))
    for i, t in enumerate(tracks):
        t.track_id = i
    return tracks


def smooth_boxes(boxes: np.ndarray, kernel: int = 13) -> np.ndarray:
    """Per-coordinate running median over a track's (n, 4) boxes (odd kernel).

    Ends repeat the first/last box (scipy.signal.medfilt, used by syncnet_python, pads zeros, which
    pulls the first and last kernel//2 boxes toward the origin).
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    if kernel <= 1 or len(boxes) == 0:
        return boxes.copy()
    if kernel % 2 == 0:
        raise ValueError(f"median kernel must be odd, got {kernel}")
    return median_filter(boxes, size=(kernel, 1), mode="nearest").astype(np.float32)
