"""Weight files in the exact official ``syncnet_v2.model`` format, with seeded random values.

The official file cannot be downloaded in tests; these files exercise the real loading path (same keys,
shapes, dtype, a plain state dict in torch's legacy serialisation like the 2017 original). They are
test and benchmark inputs only: nothing in the library falls back to them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from tests.support.seeded_weights import seeded_state_dict
from kling.perception.sync.model import SyncNetConfig, expected_keys


# raw pixels (0..255) and MFCCs (~10) in, embeddings at the trained net's scale (distances ~10) out
_INPUT_SCALE = {"netcnnlip.0.weight": 1 / 128, "netcnnaud.0.weight": 1 / 16, "netfclip.3.weight": 0.1, "netfcaud.3.weight": 0.1}


def random_state_dict(seed: int = 0, config: SyncNetConfig = SyncNetConfig()) -> "OrderedDict[str, torch.Tensor]":
    """Seeded random values in the official keys and shapes; the input-layer scale keeps features finite on
    raw 0..255 pixels, as the trained file does."""
    out = seeded_state_dict(expected_keys(config), seed)
    for key, scale in _INPUT_SCALE.items():
        out[key] = out[key] * scale
    return out


def write_official_format_weights(path: str | Path, seed: int = 0) -> Path:
    """Write a seeded random SyncNet state dict exactly in the official file's format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state_dict(seed), path, _use_new_zipfile_serialization=False)
    return path


def synthetic_speech(n_frames: int, seed: int = 0, sample_rate: int = 16000) -> tuple["np.ndarray", "np.ndarray"]:
    """(audio float32 (n_frames*640,), per-frame loudness envelope (n_frames,) in 0..1): syllable-like
    bursts of a harmonic voice with a random pitch and pauses. The envelope drives a mouth."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = n_frames * 640
    env = np.zeros(n)
    t = int(rng.integers(0, 3200))
    while t < n:
        dur = int(rng.integers(1300, 4000))  # 80-250 ms syllables
        env[t : t + dur] = np.sin(np.linspace(0, np.pi, len(env[t : t + dur]))) * rng.uniform(0.5, 1.0)
        t += dur + int(rng.integers(300, 5000))  # gaps, sometimes long pauses
    f0 = 110 + 30 * np.sin(np.arange(n) / sample_rate * 2 * np.pi * rng.uniform(0.5, 2))
    phase = np.cumsum(2 * np.pi * f0 / sample_rate)
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    audio = 0.25 * env * voice + 0.003 * rng.standard_normal(n)
    frame_env = env.reshape(n_frames, 640).mean(1)
    return audio.astype(np.float32), frame_env / max(frame_env.max(), 1e-9)


def draw_face_frames(mouth: "np.ndarray", seed: int = 0, size: int = 224, face_box: tuple | None = None,
                     canvas: tuple[int, int] | None = None) -> "np.ndarray":
    """RGB frames (len(mouth), H, W, 3) of a simple drawn face whose mouth opens by mouth[i] in 0..1.
    Default: a face filling a size x size crop; with canvas=(H, W) and face_box=(x0, y0, x1, y1), the
    face sits in that box of a larger frame (for the full pipeline with given tracks)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = canvas or (size, size)
    x0, y0, x1, y1 = face_box or (0.18 * w, 0.12 * h, 0.82 * w, 0.95 * h)
    cx, cy, ax, ay = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    skin = tuple(int(v) for v in rng.integers(150, 220, 3))
    bg = np.full((h, w, 3), rng.integers(40, 90, 3), np.uint8)
    frames = np.empty((len(mouth), h, w, 3), np.uint8)
    for i, m in enumerate(mouth):
        jit = rng.normal(0, 0.6, 2)  # small head motion
        f = bg.copy()
        c = (int(cx + jit[0]), int(cy + jit[1]))
        cv2.ellipse(f, c, (int(ax * 0.8), int(ay * 0.85)), 0, 0, 360, skin, -1)
        for sx in (-1, 1):
            cv2.circle(f, (int(c[0] + sx * ax * 0.33), int(c[1] - ay * 0.25)), max(2, int(ax * 0.08)), (30, 30, 30), -1)
        cv2.line(f, (c[0], int(c[1] - ay * 0.1)), (c[0], int(c[1] + ay * 0.15)), (120, 90, 80), 2)
        mh = int(2 + m * ay * 0.22)
        cv2.ellipse(f, (c[0], int(c[1] + ay * 0.45)), (int(ax * 0.3), mh), 0, 0, 360, (90, 20, 30), -1)
        frames[i] = f
    return frames
