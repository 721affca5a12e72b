"""Seeded random state dicts with exactly a network's official keys and shapes.

The official weight files cannot be downloaded in tests; files built from these exercise the real loading
paths. Test and benchmark inputs only: nothing in the library falls back to them.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch


def seeded_state_dict(expected: dict[str, tuple[int, ...]], seed: int = 0, with_counters: bool = False,
                      ) -> "OrderedDict[str, torch.Tensor]":
    """He-scaled conv/linear weights, BN scale ~1 and shift ~0, running stats in a plausible range, so that
    activations stay finite and informative through a deep random network. `with_counters` adds BatchNorm's
    `num_batches_tracked` after each `.bn.running_var`, as torchvision-style checkpoints carry."""
    g = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, shape in expected.items():
        if key.endswith("running_var"):
            t = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith("running_mean"):
            t = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1 and key.endswith("weight"):  # BN scale
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith("bias"):
            t = 0.05 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:])
            t = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        out[key] = t.float().contiguous()
        if with_counters and key.endswith(".bn.running_var"):
            out[key[: -len("running_var")] + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return out
