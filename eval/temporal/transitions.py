"""Transition smoothness: does a stitch between sub-clips show as a spike in frame-to-frame change?

Protocol (``transitions-v1``): the change signal is eval.temporal.framestats' per-frame mean absolute grey
difference. Its within-segment distribution is the signal with ``GUARD`` frames either side of every
boundary removed; location = median, scale = max(1.4826 * MAD, 5% of the median, ``MIN_SCALE`` grey levels)
(the floor keeps a perfectly still clip from dividing by ~0). A boundary's score is the robust z of the
largest change within one frame of it. Boundaries are given (a generated video's sidecar names its `joins`,
where independently generated pieces meet: windows, or the cascade's sub-clips) or detected: frames whose
robust z against the whole clip exceeds ``Z_THRESHOLD``, local maxima only. The worst boundary is the one
with the largest z; ``max_z`` over all frames is reported too, so a steady clip shows a low number rather
than nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kling.clock import FPS
from kling.paths import sidecar

PROTOCOL_NAME = "transitions-v1"
GUARD = 2
MIN_SCALE = 0.5
Z_THRESHOLD = 8.0


@dataclass
class Boundary:
    frame: int
    change: float
    z: float


@dataclass
class TransitionResult:
    boundaries: list[Boundary] = field(default_factory=list)
    detected: bool = True  # boundaries detected (True) or given (False)
    location: float | None = None
    scale: float | None = None
    max_z: float | None = None
    n_frames: int = 0

    @property
    def worst(self) -> Boundary | None:
        return max(self.boundaries, key=lambda b: b.z) if self.boundaries else None

    def to_dict(self) -> dict:
        w = self.worst
        return {"protocol_version": PROTOCOL_NAME, "detected": self.detected, "location": self.location,
                "scale": self.scale, "max_z": self.max_z, "n_frames": self.n_frames,
                "boundaries": [asdict(b) for b in self.boundaries], "worst": asdict(w) if w else None}


def robust_location_scale(x: np.ndarray) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    if not len(x):
        return 0.0, MIN_SCALE
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    return med, max(1.4826 * mad, 0.05 * med, MIN_SCALE)


def detect_boundaries(change: np.ndarray, z_threshold: float = Z_THRESHOLD) -> list[int]:
    """Frames whose change is a local maximum with robust z (whole clip) above the threshold."""
    loc, scale = robust_location_scale(change)
    z = (np.nan_to_num(change, nan=loc) - loc) / scale
    out = []
    for i in range(1, len(z)):
        left = z[i - 1] if i > 0 else -np.inf
        right = z[i + 1] if i + 1 < len(z) else -np.inf
        if z[i] > z_threshold and z[i] >= left and z[i] > right:
            out.append(i)
    return out


def score_transitions(change: np.ndarray, boundaries: list[int] | None = None, guard: int = GUARD,
                      z_threshold: float = Z_THRESHOLD) -> TransitionResult:
    """Scores of given (or detected) boundaries against the clip's own within-segment change distribution."""
    change = np.asarray(change, np.float64)
    n = len(change)
    detected = boundaries is None
    bounds = detect_boundaries(change, z_threshold) if detected else sorted(int(b) for b in boundaries if 0 < b < n)
    inside = np.ones(n, bool)
    for b in bounds:
        inside[max(0, b - guard): b + guard + 1] = False
    loc, scale = robust_location_scale(change[inside] if inside.any() else change)
    z_all = (np.nan_to_num(change, nan=loc) - loc) / scale
    res = TransitionResult(detected=detected, location=loc, scale=scale, n_frames=n,
                           max_z=float(z_all.max()) if n else None)
    for b in bounds:
        lo, hi = max(1, b - 1), min(n, b + 2)  # a stitch may land one frame off the nominal boundary
        j = lo + int(np.nanargmax(change[lo:hi])) if hi > lo else b
        res.boundaries.append(Boundary(frame=b, change=float(change[j]), z=float(z_all[j])))
    return res


def boundaries_every(n_frames: int, segment_s: float, fps: float = FPS) -> list[int]:
    """Nominal stitch frames of a cascade that joins sub-clips of ``segment_s`` seconds."""
    step = segment_s * fps
    return [int(round(k * step)) for k in range(1, int(n_frames / step) + 1) if round(k * step) < n_frames]


def given_joins(video: str | Path) -> list[int] | None:
    """The frames where a generated video's pieces meet, from its sidecar (kling.paths.sidecar); None when the
    video has no sidecar or the sidecar names none (controls, ground truth, other generators' files)."""
    meta = sidecar(video)
    if not meta.is_file():
        return None
    try:
        joins = json.loads(meta.read_text()).get("joins")
        return [int(j) for j in joins] if isinstance(joins, list) else None
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):  # not a generator's sidecar
        return None
