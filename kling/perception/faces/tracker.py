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

from kling.perception.faces.detection import Detection


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
    """An open track: its first frame and the observations not yet written out (at least the last two, which
    predict the next box, and the last one before the output horizon, which interpolates across it)."""

    track_id: int  # creation order
    start: int
    frames: list[int] = field(default_factory=list)
    dets: list[Detection] = field(default_factory=list)
    kept: bool = False  # long enough for min_len: it stays in the output whatever follows

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
    """Online IoU tracker whose output rows leave it as soon as they can no longer change.

    Feed frames in increasing order with `update`, call `cut` at shot starts, and `take` the final rows
    whenever convenient; `take(final=True)` closes every track at the end. Rows come as Track pieces that
    carry their final ids: the kept tracks (at least `min_len` frames, gaps included) numbered 0..n-1 in
    order of start frame, then of creation. Taking early or late, often or once, gives the same rows.

    The rows of frame f are final once every open track has been seen at or after f (an unseen frame may
    still be filled by interpolation) and every track starting at or before f is known to be kept or
    dropped. So the tracker holds at most about `max_gap + min_len` frames of observations whatever the
    video's length.
    """

    def __init__(self, iou_threshold: float = 0.3, max_gap: int = 5, min_len: int = 1):
        self.iou_threshold = float(iou_threshold)
        self.max_gap = int(max_gap)
        self.min_len = int(min_len)
        self._open: list[_Open] = []
        self._closed: list[Track] = []  # kept and closed, with rows not yet taken (track_id: creation order)
        self._next_id = 0
        self._last_frame: int | None = None
        # final ids: creation order among kept tracks, so a track's id waits for every earlier track's fate
        self._fates: dict[int, bool | None] = {}  # creation id -> kept? (None: open, not yet long enough)
        self._final_ids: dict[int, int] = {}
        self._next_final = 0
        self._taken_until = 0  # rows of frames below this have been taken

    def _decide(self, t: _Open, kept: bool) -> None:
        t.kept = kept
        self._fates[t.track_id] = kept
        for cid in list(self._fates):  # insertion order = creation order
            fate = self._fates[cid]
            if fate is None:
                break
            del self._fates[cid]
            if fate:
                self._final_ids[cid] = self._next_final
                self._next_final += 1

    def _observe(self, t: _Open, frame: int, det: Detection) -> None:
        t.frames.append(frame)
        t.dets.append(det)
        if not t.kept and frame - t.start + 1 >= self.min_len:
            self._decide(t, True)

    def _close(self, tracks: Iterable[_Open]) -> None:
        for t in tracks:
            if t.kept:
                self._closed.append(_finish(t))
            else:
                self._decide(t, False)

    def cut(self) -> None:
        """Shot boundary: close every open track so that none spans the cut."""
        closed, self._open = self._open, []
        self._close(closed)

    def update(self, frame: int, detections: Sequence[Detection]) -> None:
        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueError(f"frames must increase: got {frame} after {self._last_frame}")
        self._last_frame = frame
        # Close tracks that can no longer be matched (gap would exceed max_gap).
        stale = [t for t in self._open if frame - t.last_frame - 1 > self.max_gap]
        self._open = [t for t in self._open if frame - t.last_frame - 1 <= self.max_gap]
        self._close(stale)

        unmatched = list(range(len(detections)))
        if self._open and detections:
            pred = np.stack([t.predict(frame) for t in self._open])
            iou = iou_matrix(pred, np.stack([d.box for d in detections]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.iou_threshold:
                    self._observe(self._open[r], frame, detections[c])
                    unmatched.remove(c)
        for c in unmatched:
            t = _Open(self._next_id, frame)
            self._next_id += 1
            self._fates[t.track_id] = None
            self._open.append(t)
            self._observe(t, frame, detections[c])

    @property
    def held_observations(self) -> int:
        """Detections the tracker holds (bounded whatever the video's length; for tests and benchmarks)."""
        return sum(len(t.dets) for t in self._open)

    def _horizon(self) -> int:
        """First frame whose rows may still change."""
        h = self._taken_until if self._last_frame is None else self._last_frame + 1
        for t in self._open:
            h = min(h, t.last_frame + 1 if t.kept else t.start)
        return h

    def take(self, final: bool = False) -> list[Track]:
        """The rows that are final and not yet taken, as pieces of tracks with their final ids."""
        if final:
            self.cut()
        horizon = self._horizon()
        lo = self._taken_until
        pieces = []
        for t in self._closed:
            pieces.append(_rows_between(t, lo, horizon, self._final_ids))
        for t in self._open:
            if t.kept and t.last_frame >= lo:
                pieces.append(_rows_between(_finish(t), lo, horizon, self._final_ids))
        self._closed = [t for t in self._closed if t.end >= horizon]
        for t in self._open:  # drop observations that no later row needs
            keep_from = min(int(np.searchsorted(t.frames, horizon)) - 1, len(t.frames) - 2)
            if keep_from > 0:
                del t.frames[:keep_from], t.dets[:keep_from]
        self._taken_until = max(lo, horizon)
        return [p for p in pieces if p is not None]


def _rows_between(t: Track, lo: int, hi: int, final_ids: dict[int, int]) -> Track | None:
    """Track `t`'s rows of frames lo <= f < hi, under its final id."""
    i0, i1 = max(lo - t.start, 0), min(hi - t.start, len(t))
    if i0 >= i1:
        return None
    return Track(
        track_id=final_ids[t.track_id],
        frames=t.frames[i0:i1],
        boxes=t.boxes[i0:i1],
        scores=t.scores[i0:i1],
        lm5=t.lm5[i0:i1],
        lm68=None if t.lm68 is None else t.lm68[i0:i1],
        interpolated=t.interpolated[i0:i1],
    )


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
    take_every: int = 1,
) -> list[Track]:
    """Track a whole list of per-frame detections (frame i = start_frame + i); whole tracks, ids in start
    order. `take_every`: frames between the tracker's takes (any value gives the same tracks)."""
    cuts = shot_starts(shots)
    tracker = IoUTracker(iou_threshold, max_gap, min_len)
    pieces: list[Track] = []
    for i, dets in enumerate(detections):
        frame = start_frame + i
        if frame in cuts:
            tracker.cut()
        tracker.update(frame, dets)
        if (i + 1) % take_every == 0:
            pieces += tracker.take()
    pieces += tracker.take(final=True)
    return join_pieces(pieces)


def join_pieces(pieces: Sequence[Track]) -> list[Track]:
    """Whole tracks, by id, from the pieces IoUTracker.take gives."""
    by_id: dict[int, list[Track]] = {}
    for p in pieces:
        by_id.setdefault(p.track_id, []).append(p)
    tracks = []
    for tid in sorted(by_id):
        parts = sorted(by_id[tid], key=lambda p: p.start)
        has68 = any(p.lm68 is not None for p in parts)
        tracks.append(Track(
            track_id=tid,
            frames=np.concatenate([p.frames for p in parts]),
            boxes=np.concatenate([p.boxes for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            lm5=np.concatenate([p.lm5 for p in parts]),
            lm68=np.concatenate([p.lm68 if p.lm68 is not None else np.full((len(p), 68, 2), np.nan, np.float32)
                                 for p in parts]) if has68 else None,
            interpolated=np.concatenate([p.interpolated for p in parts]),
        ))
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
