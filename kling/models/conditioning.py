"""The one masked-frames mechanism: known frames in pixel space (zeros elsewhere) are VAE-encoded and
concatenated with mask channels, exactly as Wan's image-to-video / first-last-frame models build their
conditioning; which frames are known is the mask, so one network serves every case:

    none          text/audio/reference only          first         continue from a frame
    first_last    sub-clip between two keyframes     context:K     K frames known at both ends (transitions)
"""

from __future__ import annotations

import random

import torch

MASK_KINDS = ("none", "first", "first_last", "context")


def known_frames(kind: str, n_frames: int) -> torch.Tensor:
    """(n_frames,) bool: which pixel frames are given. kind: none | first | first_last | context:K."""
    known = torch.zeros(n_frames, dtype=torch.bool)
    name, _, arg = kind.partition(":")
    if name == "none":
        pass
    elif name == "first":
        known[0] = True
    elif name == "first_last":
        known[0] = known[-1] = True
    elif name == "context":
        k = int(arg or 1)
        if not 1 <= k <= n_frames // 2:
            raise ValueError(f"context:{k} needs 1 <= K <= {n_frames // 2} for {n_frames} frames")
        known[:k] = known[-k:] = True
    else:
        raise ValueError(f"unknown mask kind {kind!r}; expected none | first | first_last | context:K")
    return known


def random_mask_kind(rng: random.Random, n_frames: int, context_max: int = 4) -> str:
    """Training draws a mask per sample so the same weights learn every use."""
    name = rng.choice(MASK_KINDS)
    return f"context:{rng.randint(1, min(context_max, n_frames // 2))}" if name == "context" else name


def mask_channels(known: torch.Tensor, stride: int, height: int, width: int) -> torch.Tensor:
    """(stride, F_lat, h, w) mask as Wan folds it: frame 0 repeated `stride` times, then groups of `stride`."""
    m = known.float()
    m = torch.cat([m[:1].repeat(stride), m[1:]])
    m = m.view(-1, stride).transpose(0, 1)  # (stride, F_lat)
    return m[:, :, None, None].expand(-1, -1, height, width).contiguous()


def masked_video(frames: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """frames (B, 3, T, H, W) in [-1, 1] -> the same with unknown frames zeroed (Wan's conditioning video)."""
    return frames * known.to(frames)[None, None, :, None, None]
