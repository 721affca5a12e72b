"""Weight files in the exact format of ``i3d_pretrained_400.pt`` (the I3D state dict of VideoGPT /
common_metrics_on_video_quality), seeded random. Test and benchmark inputs only: nothing in the library falls
back to them."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.support.fid import random_state_dict


def write_i3d_weights(path: str | Path, seed: int = 0, with_counters: bool = True) -> Path:
    """A seeded random I3D Kinetics-400 state dict with exactly the official keys and shapes."""
    from eval.fvd.i3d import expected_shapes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state_dict(expected_shapes(), seed, with_counters), path)
    return path
