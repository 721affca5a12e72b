"""The video VAE: diffusers' AutoencoderKLWan (causal 3-D convs; temporal stride 4), sized by the registry.

Latents are normalised with the config's latents_mean / latents_std, as Wan's pipelines do; encoding takes
the posterior mean (Wan's "argmax" mode), so conditioning is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from kling.models.registry import ModelSize


def to_video(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 frames -> (1, 3, T, H, W) in [-1, 1], the layout the VAE and the models take."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)[None]


def to_frames(video: torch.Tensor) -> np.ndarray:
    """(1, 3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8 frames."""
    return video[0].add(1.0).mul(127.5).round().clamp(0, 255).byte().permute(1, 2, 3, 0).cpu().numpy()


def build_vae(size: ModelSize) -> AutoencoderKLWan:
    return AutoencoderKLWan(**size.vae)


def load_vae(folder: str | Path) -> AutoencoderKLWan:
    """A diffusers-format VAE folder (config.json + diffusion_pytorch_model*.safetensors)."""
    return AutoencoderKLWan.from_pretrained(str(folder), local_files_only=True)


def _stats(vae: AutoencoderKLWan, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean, dtype=like.dtype, device=like.device).view(1, z, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, dtype=like.dtype, device=like.device).view(1, z, 1, 1, 1)
    return mean, std


def encode(vae: AutoencoderKLWan, video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] (on any device) -> normalised latents (B, z, (T-1)/4+1, H/s, W/s) on the VAE's."""
    mu = vae.encode(video.to(vae.device)).latent_dist.mode()
    mean, std = _stats(vae, mu)
    return (mu - mean) / std


def decode(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents -> (B, 3, T, H, W) in [-1, 1]."""
    mean, std = _stats(vae, latents)
    return vae.decode(latents * std + mean).sample.clamp(-1, 1)


def stitch_latents(windows: list[torch.Tensor]) -> torch.Tensor:
    """Latents of windows that each start on the last frame of the one before, as one stream to decode: a window's
    first latent (its shared first frame, which the causal encoder encodes alone) is dropped after the first."""
    return torch.cat([windows[0]] + [w[:, :, 1:] for w in windows[1:]], dim=2)
