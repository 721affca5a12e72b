"""Per-frame head-pose tracks for the demo clips, one per ground-truth motion label.

Labels are what a prompt-adherence metric later asserts ("nods", "shakes head", "stays still", "camera
zooms in"), so each label drives exactly one kind of motion and the others stay small or zero.
"""

from __future__ import annotations

import numpy as np

MOTIONS = ("sway", "nod", "shake", "still", "zoom_in", "none")

# amplitudes in degrees / scale units, frequencies in Hz: recorded in the manifest as motion_params
MOTION_PARAMS = {
    "sway": {"yaw_deg": 4.0, "pitch_deg": 2.5, "roll_deg": 2.0, "shift_px": 3.0, "freq_hz": [0.15, 0.4]},
    "nod": {"axis": "pitch", "amplitude_deg": 10.0, "freq_hz": 1.0},
    "shake": {"axis": "yaw", "amplitude_deg": 22.0, "freq_hz": 0.8},
    "still": {},
    "zoom_in": {"scale_start": 0.8, "scale_end": 1.35},
    "none": {},
}

_BLINK_PROFILE = np.array([0.45, 1.0, 1.0, 0.6, 0.2], np.float32)


def blink_track(n_frames: int, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Eyelid closure per frame (0 open .. 1 closed) with a blink every 2-5 s; returns onsets too."""
    closed = np.zeros(n_frames, np.float32)
    onsets = []
    t = rng.uniform(0.6, 2.0)
    while True:
        i = int(round(t * fps))
        if i + len(_BLINK_PROFILE) > n_frames:
            break
        closed[i : i + len(_BLINK_PROFILE)] = _BLINK_PROFILE
        onsets.append(i)
        t += rng.uniform(2.0, 5.0)
    return closed, onsets


def pose_tracks(motion: str, n_frames: int, fps: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrays yaw, pitch, roll (deg), scale, tx, ty (px at 256-px frames) for `motion`."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; expected one of {MOTIONS}")
    t = np.arange(n_frames, dtype=np.float64) / fps
    z = np.zeros(n_frames)
    tr = {"yaw": z.copy(), "pitch": z.copy(), "roll": z.copy(), "scale": np.ones(n_frames), "tx": z.copy(),
          "ty": z.copy()}
    p = MOTION_PARAMS[motion]

    def wave(amp: float, lo: float, hi: float) -> np.ndarray:
        # two incommensurate sines: smooth, non-periodic-looking drift
        f = rng.uniform(lo, hi, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        return amp * (0.7 * np.sin(2 * np.pi * f[0] * t + ph[0]) + 0.3 * np.sin(2 * np.pi * f[1] * t + ph[1]))

    if motion == "sway":
        lo, hi = p["freq_hz"]
        tr["yaw"] = wave(p["yaw_deg"], lo, hi)
        tr["pitch"] = wave(p["pitch_deg"], lo, hi)
        tr["roll"] = wave(p["roll_deg"], lo, hi)
        tr["tx"] = wave(p["shift_px"], lo, hi)
        tr["ty"] = wave(p["shift_px"] * 0.6, lo, hi)
    elif motion in ("nod", "shake"):
        axis = p["axis"]
        tr[axis] = p["amplitude_deg"] * np.sin(2 * np.pi * p["freq_hz"] * t)
        other = "yaw" if axis == "pitch" else "pitch"
        tr[other] = wave(1.0, 0.15, 0.3)  # a real head is never perfectly locked on the other axis
    elif motion == "zoom_in":
        tr["scale"] = np.linspace(p["scale_start"], p["scale_end"], n_frames)
    return {k: v.astype(np.float32) for k, v in tr.items()}
