"""Weight files in the exact format of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, seeded random.

The official file cannot be downloaded in tests; these exercise the real loading path (same keys, shapes and
dtype as the official state dict). Test and benchmark inputs only: nothing in the library falls back to them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from tests.support.seeded_weights import seeded_state_dict


def random_state_dict(expected: dict[str, tuple[int, ...]], seed: int = 0, with_counters: bool = True
                      ) -> "OrderedDict[str, torch.Tensor]":
    """Seeded random values for `expected` keys and shapes, with BatchNorm counters as pytorch-fid's file has."""
    return seeded_state_dict(expected, seed, with_counters)


def write_inception_weights(path: str | Path, seed: int = 0, with_counters: bool = True) -> Path:
    """A seeded random FID Inception state dict with exactly the official keys and shapes."""
    from eval.fid.inception import expected_shapes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_state_dict(expected_shapes(), seed, with_counters), path)
    return path
