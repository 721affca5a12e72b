"""Video super-resolution of the cascade's faces (its stage 6): the avatar model's clip -> the same clip at
`scale` x the side.

A small regression network of the EDVR / BasicVSR family: features at the low resolution from 3-D
convolutions, of which the first `temporal_layers` blocks also see one frame each side (a frame's output
depends on that many frames each side, so a long clip is upscaled in chunks with that halo and memory stays
flat), then ESPCN's sub-pixel convolution to the target side, added to the bicubic upsampling of the input:
the network learns only the detail bicubic cannot give. Its last layer starts at zero, so an untrained
network is exactly bicubic. It learns the generator's own degradation (kling.train.super_resolution: the
input is the face passed through the trained video VAE, the target the face at twice the side).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kling.models.checkpoint import load_tensors, save_checkpoint
from kling.models.registry import SuperResolutionSize, get_super_resolution_size
from kling.models.vae import to_frames, to_video


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, temporal: bool):
        super().__init__()
        t = 3 if temporal else 1
        self.conv1 = nn.Conv3d(channels, channels, (t, 3, 3), padding=(t // 2, 1, 1))
        self.conv2 = nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(x)))


def _per_frame(video: torch.Tensor, fn) -> torch.Tensor:
    """Apply a 2-D op to every frame of (B, C, T, H, W)."""
    b, c, t, h, w = video.shape
    y = fn(video.transpose(1, 2).reshape(b * t, c, h, w))
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


class VideoSuperResolution(nn.Module):
    def __init__(self, size: SuperResolutionSize):
        super().__init__()
        self.size = size
        c, s = size.channels, size.scale
        self.head = nn.Conv3d(3, c, (1, 3, 3), padding=(0, 1, 1))
        self.blocks = nn.Sequential(*[ResidualBlock(c, temporal=i < size.temporal_layers) for i in range(size.blocks)])
        self.tail = nn.Conv3d(c, 3 * s * s, (1, 3, 3), padding=(0, 1, 1))
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    @property
    def halo(self) -> int:
        """Frames each side that a frame's output depends on."""
        return self.size.temporal_layers

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, h, w) in [-1, 1] -> (B, 3, T, scale*h, scale*w)."""
        s = self.size.scale
        detail = _per_frame(self.tail(self.blocks(self.head(video))), lambda x: F.pixel_shuffle(x, s))
        base = _per_frame(video, lambda x: F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False))
        return base + detail


@torch.no_grad()
def upscale_frames(model: VideoSuperResolution, frames, out, chunk: int = 16):
    """Upscale `frames` ((N, h, w, 3) uint8; anything sliced like an array: kling.io.frame_file.FrameFile
    stays on disk) into `out` ((N, s*h, s*w, 3)), `chunk` frames at a time with the model's halo each side:
    the same frames as one pass over the whole clip, in memory that does not grow with N. Returns `out`."""
    n, halo = len(frames), model.halo
    for start in range(0, n, chunk):
        lo, hi = max(0, start - halo), min(n, start + chunk + halo)
        up = to_frames(model(to_video(np.asarray(frames[lo:hi]))))
        stop = min(n, start + chunk)
        out[start:stop] = up[start - lo: stop - lo]
    return out


def save_super_resolution(folder: str | Path, model: VideoSuperResolution, meta: dict) -> Path:
    """model.safetensors + meta.json (its size by name), through the project's checkpoint writer."""
    return save_checkpoint(folder, model, None, None, meta | {"size": model.size.name})


@dataclasses.dataclass
class SuperResolutionCheckpoint:
    model: VideoSuperResolution
    sha256: str  # of model.safetensors
    folder: Path


def load_super_resolution(folder: str | Path) -> SuperResolutionCheckpoint:
    """The network (eval mode) from a checkpoint folder `save_super_resolution` wrote, or from a run folder whose
    latest.json names one (kling.train.super_resolution)."""
    folder = Path(folder)
    if (folder / "latest.json").is_file() and not (folder / "meta.json").is_file():
        folder = Path(json.loads((folder / "latest.json").read_text()).get("checkpoint") or folder)
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"no super-resolution checkpoint at {folder} (meta.json missing): train it first "
                                f"(the training/super_resolution asset)")
    meta = json.loads((folder / "meta.json").read_text())
    model = VideoSuperResolution(get_super_resolution_size(meta["size"]))
    model.load_state_dict(load_tensors(folder / "model.safetensors"))
    return SuperResolutionCheckpoint(model.eval(), meta["model_sha256"], folder)
