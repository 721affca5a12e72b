"""The SyncNet architecture (joonson/syncnet_python ``SyncNetModel.S``) and its weight loading.

Submodule names are the official ones (``netcnnaud``, ``netfcaud``, ``netcnnlip``, ``netfclip``) so the
official ``syncnet_v2.model`` state dict loads key for key. ``width``/``lip_size``/``fc_dim`` only exist for
the self-trained expert (kling.perception.sync.expert); the official file needs the defaults.

Loading is strict where the reference is lax: the reference copies whatever keys the file has into a
randomly initialised net, so a truncated or foreign file silently runs on random weights. Here every
parameter and running statistic must come from the file (only ``num_batches_tracked``, which the 2017 file
predates and inference never reads, may be absent), with matching shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from kling.clock import MFCC_PER_FRAME

LIP_FRAMES = 5  # frames per lip window
MFCC_WINDOW = MFCC_PER_FRAME * LIP_FRAMES  # 20 MFCC frames per audio window (0.2 s)
N_MFCC = 13


class SyncWeightsError(ValueError):
    """A weight file that is not a SyncNet state dict of the expected shape."""


@dataclass(frozen=True)
class SyncNetConfig:
    """Architecture knobs. Defaults are the official network; the expert uses a narrower, smaller one."""

    width: float = 1.0  # channel multiplier
    fc_dim: int = 1024  # embedding size
    lip_size: int = 224  # square face-crop side fed to the lip stream

    def to_dict(self) -> dict:
        return asdict(self)


def _ch(n: int, width: float) -> int:
    return max(8, int(round(n * width)))


def _lip_final_kernel(lip_size: int) -> int:
    # spatial size after the lip stream's strided conv/pool stack, which the last conv collapses to 1x1
    s = (lip_size - 7) // 2 + 1  # conv 7x7 s2
    s = (s - 3) // 2 + 1  # pool 3 s2
    s = (s + 2 - 5) // 2 + 1  # conv 5x5 s2 p1
    s = (s + 2 - 3) // 2 + 1  # pool 3 s2 p1
    s = (s - 3) // 2 + 1  # pool 3 s2 (after three 3x3 p1 convs)
    if s < 1:
        raise ValueError(f"lip_size {lip_size} too small for the SyncNet lip stream")
    return s


class SyncNet(nn.Module):
    """Same layers, order and names as the reference ``S``; forward_lip/forward_aud as the reference."""

    def __init__(self, config: SyncNetConfig = SyncNetConfig()):
        super().__init__()
        self.config = config
        w = config.width
        a1, a2, a3, a4, a5, a6 = (_ch(n, w) for n in (64, 192, 384, 256, 256, 512))
        l1, l2, l3, l4, l5, l6 = (_ch(n, w) for n in (96, 256, 256, 256, 256, 512))
        fc = _ch(512, w)
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, a1, (3, 3), stride=(1, 1), padding=(1, 1)), nn.BatchNorm2d(a1), nn.ReLU(inplace=True),
            nn.MaxPool2d((1, 1), stride=(1, 1)),
            nn.Conv2d(a1, a2, (3, 3), stride=(1, 1), padding=(1, 1)), nn.BatchNorm2d(a2), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 3), stride=(1, 2)),
            nn.Conv2d(a2, a3, (3, 3), padding=(1, 1)), nn.BatchNorm2d(a3), nn.ReLU(inplace=True),
            nn.Conv2d(a3, a4, (3, 3), padding=(1, 1)), nn.BatchNorm2d(a4), nn.ReLU(inplace=True),
            nn.Conv2d(a4, a5, (3, 3), padding=(1, 1)), nn.BatchNorm2d(a5), nn.ReLU(inplace=True),
            nn.MaxPool2d((3, 3), stride=(2, 2)),
            nn.Conv2d(a5, a6, (5, 4), padding=(0, 0)), nn.BatchNorm2d(a6), nn.ReLU(),
        )  # fmt: skip
        self.netfcaud = nn.Sequential(nn.Linear(a6, fc), nn.BatchNorm1d(fc), nn.ReLU(), nn.Linear(fc, config.fc_dim))
        self.netfclip = nn.Sequential(nn.Linear(l6, fc), nn.BatchNorm1d(fc), nn.ReLU(), nn.Linear(fc, config.fc_dim))
        k = _lip_final_kernel(config.lip_size)
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, l1, (5, 7, 7), stride=(1, 2, 2), padding=0), nn.BatchNorm3d(l1), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(l1, l2, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), nn.BatchNorm3d(l2), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(l2, l3, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(l3), nn.ReLU(inplace=True),
            nn.Conv3d(l3, l4, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(l4), nn.ReLU(inplace=True),
            nn.Conv3d(l4, l5, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(l5), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(l5, l6, (1, k, k), padding=0), nn.BatchNorm3d(l6), nn.ReLU(inplace=True),
        )  # fmt: skip

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, 13, 20) MFCC windows -> (N, fc_dim)."""
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, 5, H, W) float pixels 0..255 in the reference's BGR order -> (N, fc_dim)."""
        return self.netfclip(self.netcnnlip(x).flatten(1))


def expected_keys(config: SyncNetConfig = SyncNetConfig()) -> dict[str, tuple[int, ...]]:
    """Every key (with shape) a complete state dict of this architecture has, num_batches_tracked aside."""
    return {k: tuple(v.shape) for k, v in SyncNet(config).state_dict().items() if not k.endswith("num_batches_tracked")}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a SyncNet weight file, loaded without unpickling objects (weights_only)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many kinds: report them as one clear error
        raise SyncWeightsError(f"{path}: not a loadable torch state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]  # expert checkpoints and some re-exports wrap the dict
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SyncWeightsError(f"{path}: expected a mapping of parameter name -> tensor")
    return {k.removeprefix("module.").removeprefix("__S__."): v for k, v in state.items()}


def load_syncnet(path: str | Path, config: SyncNetConfig = SyncNetConfig()) -> SyncNet:
    """A SyncNet in eval mode with every tensor taken from `path` (see module note on strictness)."""
    state = read_state_dict(path)
    want = expected_keys(config)
    unknown = sorted(k for k in state if k not in want and not k.endswith("num_batches_tracked"))
    missing = sorted(k for k in want if k not in state)
    bad = sorted(k for k in want if k in state and tuple(state[k].shape) != want[k])
    if unknown or missing or bad:
        parts = []
        for label, keys in (("unknown keys", unknown), ("missing keys", missing), ("shape mismatch", bad)):
            if keys:
                parts.append(f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''} ({len(keys)})")
        raise SyncWeightsError(f"{path}: not a SyncNet state dict for {config}: " + "; ".join(parts))
    net = SyncNet(config)
    own = net.state_dict()
    with torch.no_grad():
        for k in want:
            own[k].copy_(state[k].to(own[k].dtype))
    return net.eval()
