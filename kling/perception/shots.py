"""Shot (scene-cut) detection: a streaming equivalent of PySceneDetect's ContentDetector.

Protocol matched (scenedetect/detectors/content_detector.py, detector.py FlashFilter, scene_manager.py):
- each frame is downscaled so that its long side is about ``downscale_side`` px (scene_manager: factor =
  long side / 256, ``cv2.resize(round(w/f), round(h/f), INTER_LINEAR)``), converted to 8-bit HSV;
- the frame score is the weighted mean of the mean absolute per-pixel differences of H, S, V (and of dilated
  Canny edges when its weight is non-zero) against the previous frame; the first frame scores 0;
- a frame whose score is >= ``threshold`` (27.0) is a cut candidate; the FlashFilter in MERGE mode enforces
  ``min_scene_len`` frames (15) between cuts, merging bursts of fast cuts (flashes) into one;
- shots are the spans between consecutive cuts; a video with no cut is one shot.

The scenedetect package itself is not a dependency: it pulls opencv-python, which clashes with the headless build.
Frames come from kling.io.decode.iter_frames as RGB; RGB->HSV on RGB equals BGR->HSV on BGR.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kling.clock import FPS

DEFAULT_THRESHOLD = 27.0
DEFAULT_MIN_SCENE_LEN = 15
DEFAULT_DOWNSCALE_SIDE = 256  # scene_manager.DEFAULT_MIN_WIDTH, applied to the long side as in 0.7


@dataclass(frozen=True)
class Shot:
    """A shot: frames ``start_frame <= i < end_frame`` (end exclusive) on the 25 fps timeline."""

    index: int
    start_frame: int
    end_frame: int

    @property
    def end_frame_exclusive(self) -> int:
        return self.end_frame

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.start_frame

    def contains(self, frame: int) -> bool:
        return self.start_frame <= frame < self.end_frame


@dataclass(frozen=True)
class ContentWeights:
    """Component weights of the frame score (scenedetect defaults: H, S, V = 1, edges = 0)."""

    delta_hue: float = 1.0
    delta_sat: float = 1.0
    delta_lum: float = 1.0
    delta_edges: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.delta_hue, self.delta_sat, self.delta_lum, self.delta_edges], np.float64)


def downscaled_size(width: int, height: int, side: int | None) -> tuple[int, int]:
    """Analysis size: long side brought to about ``side`` px (never upscaled); None keeps full size."""
    long_side = max(width, height)
    if side is None or long_side < side:
        return width, height
    factor = long_side / float(side)
    return max(1, round(width / factor)), max(1, round(height / factor))


def estimated_kernel_size(width: int, height: int) -> int:
    """Edge dilation kernel from the analysis resolution, as scenedetect estimates it."""
    size = 4 + round(math.sqrt(width * height) / 192)
    return size + 1 if size % 2 == 0 else size


class _MergeFlashFilter:
    """scenedetect FlashFilter, MERGE mode, with the length in frames (constant frame rate here)."""

    def __init__(self, length: int):
        self.length = int(length)
        self.last_above: int | None = None
        self.merge_enabled = False
        self.merge_triggered = False
        self.merge_start: int | None = None

    def filter(self, frame: int, above: bool) -> list[int]:
        if self.length <= 0:
            return [frame] if above else []
        if self.last_above is None:
            self.last_above = frame
        min_length_met = (frame - self.last_above) >= self.length
        if above:
            self.last_above = frame
        if self.merge_triggered:
            assert self.merge_start is not None
            if min_length_met and not above and (self.last_above - self.merge_start) >= self.length:
                self.merge_triggered = False
                return [self.last_above]
            return []
        if not above:
            return []
        if min_length_met:
            self.merge_enabled = True  # merging starts only once a first cut was emitted
            return [frame]
        if self.merge_enabled:
            self.merge_triggered = True
            self.merge_start = frame
        return []


@dataclass
class ShotDetector:
    """Streaming content detector. Feed consecutive chunks with ``update``, then call ``finish``.

    ``scores`` keeps the per-frame score (float32, one per frame seen) for inspection and plots.
    """

    threshold: float = DEFAULT_THRESHOLD
    min_scene_len: int = DEFAULT_MIN_SCENE_LEN
    downscale_side: int | None = DEFAULT_DOWNSCALE_SIDE
    weights: ContentWeights = field(default_factory=ContentWeights)
    kernel_size: int | None = None

    def __post_init__(self) -> None:
        w = self.weights.as_array()
        if np.abs(w).sum() <= 0:
            raise ValueError("at least one content weight must be non-zero")
        if self.kernel_size is not None and (self.kernel_size < 3 or self.kernel_size % 2 == 0):
            raise ValueError("kernel_size must be an odd integer >= 3")
        self._w = w
        self._use_edges = self.weights.delta_edges > 0.0
        self._kernel: np.ndarray | None = None
        self._prev: np.ndarray | None = None  # (4, h, w) uint8 planes of the previous frame
        self._next_index: int | None = None
        self._filter = _MergeFlashFilter(self.min_scene_len)
        self._cuts: list[int] = []
        self._scores: list[np.ndarray] = []
        self._first_index: int | None = None

    @property
    def scores(self) -> np.ndarray:
        return np.concatenate(self._scores) if self._scores else np.zeros(0, np.float32)

    @property
    def cuts(self) -> list[int]:
        return list(self._cuts)

    @property
    def settled(self) -> int:
        """Frames below this gain no further cut, so a consumer may act on the cuts found so far there.

        A new cut lands on the frame being read, except while flashes are being merged: then it lands on the
        last frame above threshold, and only once that frame is min_scene_len past the merge's start (before
        that, only a later frame above threshold can carry it). So this is a frame behind the reading, or at
        most about min_scene_len behind while a merge can close."""
        f = self._filter
        if f.merge_triggered and f.last_above - f.merge_start >= f.length:
            return int(f.last_above)
        return self._next_index if self._next_index is not None else 0

    def _planes(self, frames: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) RGB uint8 -> (n, 4, h, w) uint8 planes H, S, V, edges."""
        n, height, width = frames.shape[:3]
        w2, h2 = downscaled_size(width, height, self.downscale_side)
        small = np.empty((n, h2, w2, 3), np.uint8)
        for i in range(n):
            f = np.ascontiguousarray(frames[i])
            small[i] = f if (w2, h2) == (width, height) else cv2.resize(f, (w2, h2), interpolation=cv2.INTER_LINEAR)
        # cvtColor is pixel-wise: convert the whole chunk as one tall image.
        hsv = cv2.cvtColor(small.reshape(n * h2, w2, 3), cv2.COLOR_RGB2HSV).reshape(n, h2, w2, 3)
        out = np.zeros((n, 4, h2, w2), np.uint8)
        out[:, :3] = hsv.transpose(0, 3, 1, 2)
        if self._use_edges:
            if self._kernel is None:
                k = self.kernel_size or estimated_kernel_size(w2, h2)
                self._kernel = np.ones((k, k), np.uint8)
            for i in range(n):
                lum = out[i, 2]
                median = float(np.median(lum))
                low = int(max(0, (1.0 - 1.0 / 3.0) * median))
                high = int(min(255, (1.0 + 1.0 / 3.0) * median))
                out[i, 3] = cv2.dilate(cv2.Canny(lum, low, high), self._kernel)
        return out

    def update(self, frames: np.ndarray, start_index: int) -> None:
        """Process ``frames`` (n, H, W, 3) RGB uint8 whose first frame has index ``start_index``."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected (n, H, W, 3) frames, got shape {frames.shape}")
        n = frames.shape[0]
        if n == 0:
            return
        if self._next_index is not None and start_index != self._next_index:
            raise ValueError(f"chunks must be consecutive: expected start {self._next_index}, got {start_index}")
        if self._first_index is None:
            self._first_index = start_index
        planes = self._planes(frames)
        if self._prev is not None and self._prev.shape[1:] != planes.shape[2:]:
            raise ValueError("frame size changed between chunks")
        seq = planes if self._prev is None else np.concatenate([self._prev[None], planes])
        # mean |delta| per component between consecutive frames, int16 to avoid uint8 wrap-around
        deltas = np.abs(np.diff(seq.astype(np.int16), axis=0)).mean(axis=(2, 3))  # (m, 4)
        comp_scores = deltas @ self._w / np.abs(self._w).sum()
        scores = comp_scores if self._prev is not None else np.concatenate([[0.0], comp_scores])
        for k in range(n):
            self._cuts.extend(self._filter.filter(start_index + k, bool(scores[k] >= self.threshold)))
        self._scores.append(scores.astype(np.float32))
        self._prev = planes[-1].copy()
        self._next_index = start_index + n

    def finish(self, n_frames: int | None = None) -> list[Shot]:
        """Shots covering ``[first frame, n_frames)``; ``n_frames`` defaults to the frames seen."""
        first = self._first_index or 0
        end = self._next_index if n_frames is None else int(n_frames)
        if end is None or end <= first:
            return []
        bounds = [first] + [c for c in self._cuts if first < c < end] + [end]
        return [Shot(i, a, b) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


SHOT_COLUMNS = ["index", "start_frame", "end_frame"]  # the shots table the curation step writes (int32)


def shots_to_frame(shots: list[Shot]) -> pd.DataFrame:
    """Shots as the curation step's table: index, start_frame, end_frame (exclusive), all int32."""
    return pd.DataFrame([dataclasses.asdict(s) for s in shots], columns=SHOT_COLUMNS).astype("int32")


def shots_from_frame(df: pd.DataFrame) -> list[Shot]:
    """Shots back from a table written by shots_to_frame."""
    return [Shot(int(r.index), int(r.start_frame), int(r.end_frame)) for r in df[SHOT_COLUMNS].itertuples(index=False)]


def detect_shots(
    video_path: str | Path,
    fps: float = FPS,
    chunk_size: int = 16,
    decode_max_side: int | None = None,
    **cfg,
) -> list[Shot]:
    """Stream a video once (kling.io.decode.iter_frames) and return its shots on the ``fps`` timeline.

    ``cfg`` goes to :class:`ShotDetector` (threshold, min_scene_len, downscale_side, weights, kernel_size).
    ``decode_max_side`` lets the decoder shrink frames first (faster on large video); the default None decodes
    at full size and resizes with INTER_LINEAR exactly as scenedetect does. Memory is bounded by ``chunk_size``.
    """
    from kling.io.decode import iter_frames

    detector = ShotDetector(**cfg)
    for chunk in iter_frames(video_path, fps=fps, chunk_size=chunk_size, max_side=decode_max_side):
        detector.update(chunk.frames, chunk.start)
    return detector.finish()
