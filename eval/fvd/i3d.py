"""Inception-v1 I3D (Carreira & Zisserman 2017) as in piergiaj/pytorch-i3d, the network VideoGPT and
common_metrics_on_video_quality (``videogpt`` FVD) load from ``i3d_pretrained_400.pt``; written here so
that state dict loads unchanged (same module names: ``Conv3d_1a_7x7.conv3d``, ``Mixed_3b.b1b.bn``,
``logits.conv3d``...).

What must match the reference exactly, beyond the layer list:

- every conv and max-pool pads TensorFlow-'SAME' style at run time, computed from the input size
  (``pad = max(k - s, 0)`` or ``max(k - size % s, 0)``, the extra pixel at the end), with zeros, also
  before max-pooling (inputs there are post-ReLU, so zeros never win over real values);
- BatchNorm eps 1e-5 (the reference's; momentum is irrelevant at inference);
- the head: average pool (2, 7, 7) stride 1, dropout (identity at inference), 1x1x1 conv with bias, squeeze
  the spatial dims, then the mean over the remaining time steps -> (N, 400) logits.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from eval.fid.inception import InceptionWeightsError, check_state_dict, load_state_dict_file

WEIGHT_NAME = "i3d_kinetics400"
BACKBONE = "i3d_kinetics400_videogpt"
NUM_CLASSES = 400


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    _, _, t, h, w = x.shape
    pt, ph, pw = (_same_pad(n, k, s) for n, k, s in zip((t, h, w), kernel, stride))
    return F.pad(x, (*pw, *ph, *pt))


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    """'SAME'-padded conv3d -> optional BN (eps 1e-5) -> optional ReLU; names ``conv3d`` / ``bn``."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), activation: bool = True,
                 batch_norm: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-5, momentum=0.001) if batch_norm else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    def __init__(self, cin: int, c: list[int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


# (name, module factory) in forward order; channel lists are (b0, b1a, b1b, b2a, b2b, b3b)
_LAYOUT = [
    ("Conv3d_1a_7x7", lambda: Unit3D(3, 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", lambda: MaxPool3dSame((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", lambda: Unit3D(64, 64)),
    ("Conv3d_2c_3x3", lambda: Unit3D(64, 192, (3, 3, 3))),
    ("MaxPool3d_3a_3x3", lambda: MaxPool3dSame((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", lambda: InceptionModule(192, [64, 96, 128, 16, 32, 32])),
    ("Mixed_3c", lambda: InceptionModule(256, [128, 128, 192, 32, 96, 64])),
    ("MaxPool3d_4a_3x3", lambda: MaxPool3dSame((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", lambda: InceptionModule(480, [192, 96, 208, 16, 48, 64])),
    ("Mixed_4c", lambda: InceptionModule(512, [160, 112, 224, 24, 64, 64])),
    ("Mixed_4d", lambda: InceptionModule(512, [128, 128, 256, 24, 64, 64])),
    ("Mixed_4e", lambda: InceptionModule(512, [112, 144, 288, 32, 64, 64])),
    ("Mixed_4f", lambda: InceptionModule(528, [256, 160, 320, 32, 128, 128])),
    ("MaxPool3d_5a_2x2", lambda: MaxPool3dSame((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", lambda: InceptionModule(832, [256, 160, 320, 32, 128, 128])),
    ("Mixed_5c", lambda: InceptionModule(832, [384, 192, 384, 48, 128, 128])),
]


class InceptionI3d(nn.Module):
    """Clips (N, 3, T, H, W) in [-1, 1] -> Kinetics-400 logits (N, 400), averaged over time."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.order = [name for name, _ in _LAYOUT]
        for name, make in _LAYOUT:
            self.add_module(name, make())
        self.logits = Unit3D(1024, num_classes, activation=False, batch_norm=False, bias=True)
        self.num_features = num_classes
        self.eval()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = self._modules[name](x)
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=(1, 1, 1))
        x = self.logits(x)  # dropout before it is the identity at inference
        return x.squeeze(3).squeeze(3).mean(dim=2)


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of the official state dict and its shape (BN ``num_batches_tracked`` counters optional)."""
    with torch.device("meta"):
        sd = InceptionI3d().state_dict()
    return {k: tuple(v.shape) for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def load_i3d(path: str | Path) -> InceptionI3d:
    """The network with the state dict at ``path`` loaded unchanged (strict keys and shapes)."""
    sd = load_state_dict_file(path)
    if sd and all(k.startswith("module.") for k in sd):
        raise InceptionWeightsError(f"{path}: keys carry a DataParallel 'module.' prefix; save the inner state dict")
    check_state_dict(sd, expected_shapes(), "the I3D Kinetics-400 state dict (i3d_pretrained_400.pt)")
    with torch.device("meta"):
        model = InceptionI3d()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True,
                          assign=True)
    return model.eval()
