"""What every face detector returns, and the small helpers they share (no detector here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Detection:
    """One face in one frame. Box and points are in full-frame pixels.

    `score` is the detector's own: SCRFD a probability in [0, 1]; dlib HOG an SVM margin (> 0,
    typically 0.5-3), so thresholds are not portable between detectors.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    lm5: np.ndarray  # (5, 2) float32, insightface order, "left" = image-left
    lm68: np.ndarray | None = field(default=None)  # (68, 2) float32 iBUG order

    @property
    def box(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float32)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


@runtime_checkable
class FaceDetector(Protocol):
    name: str

    def detect(self, frames: np.ndarray) -> list[list[Detection]]: ...

    def info(self) -> dict: ...


def as_batch(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (n, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
    return frames


def default_threads() -> int:
    """Worker threads for per-frame detector calls (dlib and cv2 release the GIL)."""
    return max(1, min(4, os.cpu_count() or 1))


def lm5_from_box(box) -> np.ndarray:
    """Mean ArcFace point positions inside a square face box (used only without landmarks)."""
    from kling.perception.faces.align import ARCFACE_DST

    x0, y0, x1, y1 = box
    rel = (ARCFACE_DST - np.array([56.0, 56.0])) / 112.0  # centred, unit box
    c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return (c + rel * np.array([x1 - x0, y1 - y0]) * 0.8).astype(np.float32)
