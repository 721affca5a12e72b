"""Audio cross-attention added after each block's text cross-attention (Kling-Avatar 1.0 / MultiTalk style).

The tokens of latent frame k attend only to the audio tokens of the video frames that latent frame covers
(VAE temporal stride s: latent 0 = video frame 0, latent k = frames s(k-1)+1 .. sk) plus `margin` frames on
each side. Joining a trained backbone, the output projection starts at zero, so the layers change nothing
until they learn; a model trained from scratch (`tiny`) starts them like any other layer (through a zero
projection its keys, values and audio encoder get no gradient until the projection has grown).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def latent_frame_span(k: int, stride: int) -> tuple[int, int]:
    """Video frames [first, last] covered by latent frame k of a causal video VAE with temporal stride."""
    return (0, 0) if k == 0 else (stride * (k - 1) + 1, stride * k)


def audio_window_mask(latent_frames: int, video_frames: int, stride: int, margin: int) -> torch.Tensor:
    """(latent_frames, video_frames) bool: True where latent frame k may attend to video frame t's audio."""
    t = torch.arange(video_frames)
    rows = []
    for k in range(latent_frames):
        a, b = latent_frame_span(k, stride)
        rows.append((t >= a - margin) & (t <= b + margin))
    return torch.stack(rows)


class AudioCrossAttention(nn.Module):
    def __init__(self, dim: int, audio_dim: int, heads: int, eps: float = 1e-6, zero_out: bool = True):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(audio_dim, dim)
        self.to_v = nn.Linear(audio_dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=eps)
        self.norm_k = nn.RMSNorm(dim, eps=eps)
        self.to_out = nn.Linear(dim, dim)
        if zero_out:
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, audio: torch.Tensor, frame_mask: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
        """x (B, F*HW, dim); audio (B, T, audio_dim); frame_mask (F, T) -> residual update (B, F*HW, dim)."""
        b, n, d = x.shape
        q = self.norm_q(self.to_q(self.norm(x))).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k = self.norm_k(self.to_k(audio)).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        v = self.to_v(audio).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        mask = frame_mask.to(x.device).repeat_interleave(tokens_per_frame, dim=0)  # (F*HW, T)
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask[None, None])
        return self.to_out(out.transpose(1, 2).flatten(2))
