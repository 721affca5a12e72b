"""Per-frame statistics for the time axis, gathered in the shared decode pass (an kling.io.frames consumer).

- sharpness: variance of the Laplacian of the grey frame at native size (the usual blur measure; falls as a
  video blurs);
- change: mean absolute grey-level difference to the previous frame, both area-downscaled to at most
  ``CHANGE_SIDE`` px (robust to codec noise; a stitch or cut is a spike); ``nan`` for frame 0;
- appearance: per time window, the mean of 16x16 RGB area thumbnails (colour layout of the scene), summed
  as frames arrive so memory stays flat in video length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from kling.clock import FPS

CHANGE_SIDE = 128
THUMB = 16


def window_index(i: int, step: float) -> int:
    """Window of frame i for windows [floor(k*step + 0.5), floor((k+1)*step + 0.5)) (csim's edges)."""
    k = int(i // step)
    while math.floor((k + 1) * step + 0.5) <= i:
        k += 1
    while k > 0 and math.floor(k * step + 0.5) > i:
        k -= 1
    return k


@dataclass
class FrameStats:
    sharpness: np.ndarray  # (n,) float64
    change: np.ndarray  # (n,) float64, nan at 0
    window_thumbs: np.ndarray  # (n_raw_windows, THUMB*THUMB*3) float64 sums of thumbnails
    window_counts: np.ndarray  # (n_raw_windows,) frames summed per window
    n_frames: int
    fps: float
    window_s: float


class FrameStatsConsumer:
    def __init__(self, fps: float = FPS, window_s: float = 10.0):
        self.fps, self.window_s = fps, window_s
        self.step = window_s * fps
        self._sharp: list[float] = []
        self._change: list[float] = []
        self._prev: np.ndarray | None = None
        self._thumbs: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}

    def update(self, chunk) -> None:
        for k, frame in enumerate(chunk.frames):
            i = chunk.start + k
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            self._sharp.append(float(cv2.Laplacian(grey, cv2.CV_64F).var()))
            h, w = grey.shape
            s = min(1.0, CHANGE_SIDE / max(h, w))
            small = cv2.resize(grey, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            small = small.astype(np.float32)
            self._change.append(float("nan") if self._prev is None else float(np.abs(small - self._prev).mean()))
            self._prev = small
            thumb = cv2.resize(frame, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
            wi = window_index(i, self.step)
            self._thumbs[wi] = self._thumbs.get(wi, 0.0) + thumb
            self._counts[wi] = self._counts.get(wi, 0) + 1

    def finish(self, n_frames: int) -> FrameStats:
        n_w = max(self._thumbs) + 1 if self._thumbs else 0
        thumbs = np.zeros((n_w, THUMB * THUMB * 3))
        counts = np.zeros(n_w, np.int64)
        for k, v in self._thumbs.items():
            thumbs[k], counts[k] = v, self._counts[k]
        return FrameStats(np.asarray(self._sharp), np.asarray(self._change), thumbs, counts, n_frames, self.fps,
                          self.window_s)
