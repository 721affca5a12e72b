"""Fast inference for a loaded SyncNet: the same function, computed with less waste.

What changes against the reference's ``forward_lip`` on a batch of copied 5-frame windows:

- BatchNorm is folded into the preceding conv/linear (inference only; identical up to float rounding).
- Every lip-stream layer after the first has temporal kernel 1, so those layers run as 2-D convolutions
  (channels-last, the layout oneDNN is fastest with); the first layer's (5, 7, 7) kernel becomes a 2-D
  kernel over 15 channels (5 frames x 3 colours, frame-major).
- Frames are converted to float once, in one buffer; windows are strided views of that buffer
  (``unfold``), not five copies made in Python.
- Frames arrive in chunks (``LipStream``): memory is flat in video length, the last four frames of a
  chunk are kept so windows spanning two chunks are computed exactly once.

Colour order: the reference reads frames with ``cv2.imread`` and feeds them unconverted, so the official
weights see **BGR** pixels in 0..255 (no mean/std). Our decoders give RGB; ``LipStream`` flips to BGR.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from kling.clock import MFCC_PER_FRAME
from kling.perception.sync.model import LIP_FRAMES, MFCC_WINDOW, SyncNet

_CL = torch.channels_last


def _fold(conv_w: torch.Tensor, conv_b: torch.Tensor | None, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv_b if conv_b is not None else torch.zeros_like(bn.running_mean)
    w = conv_w * scale.reshape(-1, *([1] * (conv_w.dim() - 1)))
    return w.contiguous(), (bias - bn.running_mean) * scale + bn.bias


class FusedSyncNet:
    """Inference-only twin of a SyncNet (weights copied and folded; the source net is not kept)."""

    def __init__(self, net: SyncNet):
        net = net.eval()
        with torch.no_grad():
            self._lip = self._fold_lip(net.netcnnlip)
            self._aud = self._fold_seq(net.netcnnaud)
            self._fclip = self._fold_fc(net.netfclip)
            self._fcaud = self._fold_fc(net.netfcaud)
        self.config = net.config

    # -- folding ---------------------------------------------------------------------------------------
    @staticmethod
    def _fold_seq(seq: nn.Sequential) -> list[tuple]:
        """[("conv", w, b, stride, padding) | ("pool", k, s, p) | ("relu",)] for a 2-D conv stack."""
        ops, mods, i = [], list(seq), 0
        while i < len(mods):
            m = mods[i]
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                w, b = _fold(m.weight, m.bias, mods[i + 1])
                if isinstance(m, nn.Conv3d):
                    if w.shape[2] != 1:  # the first lip layer: frames become channels, frame-major
                        o, c, t, kh, kw = w.shape
                        w = w.permute(0, 2, 1, 3, 4).reshape(o, t * c, kh, kw)
                    else:
                        w = w[:, :, 0]
                    stride, padding = tuple(m.stride[1:]), tuple(m.padding[1:])
                else:
                    stride, padding = tuple(m.stride), tuple(m.padding)
                ops.append(("conv", w.contiguous(memory_format=_CL), b.contiguous(), stride, padding))
                i += 2
                continue
            if isinstance(m, (nn.MaxPool2d, nn.MaxPool3d)):
                k, s, p = (tuple(v[-2:]) if isinstance(v, tuple) else (v, v) for v in (m.kernel_size, m.stride, m.padding))
                if k != (1, 1):  # the audio stream's 1x1 pool is an identity
                    ops.append(("pool", k, s, p))
            elif isinstance(m, nn.ReLU):
                ops.append(("relu",))
            i += 1
        return ops

    def _fold_lip(self, seq: nn.Sequential) -> list[tuple]:
        return self._fold_seq(seq)

    @staticmethod
    def _fold_fc(seq: nn.Sequential) -> tuple:
        lin1, bn, _, lin2 = seq
        w1, b1 = _fold(lin1.weight, lin1.bias, bn)
        return w1, b1, lin2.weight.detach().clone(), lin2.bias.detach().clone()

    # -- running ---------------------------------------------------------------------------------------
    @staticmethod
    def _run(ops: list[tuple], x: torch.Tensor) -> torch.Tensor:
        for op in ops:
            if op[0] == "conv":
                x = F.conv2d(x, op[1], op[2], stride=op[3], padding=op[4])
            elif op[0] == "pool":
                x = F.max_pool2d(x, op[1], op[2], op[3])
            else:
                x = F.relu_(x)
        return x

    @staticmethod
    def _fc(p: tuple, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.relu(F.linear(x, p[0], p[1])), p[2], p[3])

    def lip(self, windows: torch.Tensor) -> torch.Tensor:
        """windows (N, 15, H, W): 5 frames x BGR, frame-major, float 0..255 -> (N, fc_dim)."""
        x = self._run(self._lip, windows.contiguous(memory_format=_CL))
        return self._fc(self._fclip, x.flatten(1))

    def audio(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        """mfcc_windows (N, 1, 13, 20) -> (N, fc_dim)."""
        x = self._run(self._aud, mfcc_windows.contiguous(memory_format=_CL))
        return self._fc(self._fcaud, x.flatten(1))

    def audio_features(self, mfcc: np.ndarray, n_windows: int, batch_size: int = 256) -> torch.Tensor:
        """Features of audio windows 0..n_windows-1 (window i = MFCC columns 4i..4i+20) of mfcc (13, M)."""
        cc = torch.from_numpy(np.ascontiguousarray(mfcc, dtype=np.float32))
        need = MFCC_PER_FRAME * (n_windows - 1) + MFCC_WINDOW
        if n_windows <= 0:
            return torch.zeros(0, self.config.fc_dim)
        if cc.shape[1] < need:
            raise ValueError(f"MFCC has {cc.shape[1]} frames, {need} needed for {n_windows} windows")
        wins = cc.unfold(1, MFCC_WINDOW, MFCC_PER_FRAME)[:, :n_windows]  # (13, n, 20), a strided view
        out = []
        with torch.inference_mode():
            for i in range(0, n_windows, batch_size):
                out.append(self.audio(wins[:, i : i + batch_size].permute(1, 0, 2).unsqueeze(1)))
        return torch.cat(out)


class LipStream:
    """Push frames of one face track in order, chunk by chunk; get one lip feature per 5-frame window.

    Window i covers frames i..i+4. ``push`` computes complete windows in batches of exactly ``batch_size``
    (so the numbers never depend on how the decoder chunked the frames); the frames of a partial batch wait
    for the next push or for ``features``.
    """

    def __init__(self, net: FusedSyncNet, batch_size: int = 32, bgr: bool = True):
        self.net = net
        self.batch_size = batch_size
        self.bgr = bgr  # flip RGB input to the reference's BGR
        self._tail: torch.Tensor | None = None  # (k < batch_size + 4, H, W, 3) float frames not yet scored
        self._feats: list[torch.Tensor] = []
        self.n_frames = 0

    def push(self, frames: np.ndarray) -> None:
        """frames (n, H, W, 3) uint8 RGB (BGR if bgr=False), the track's next frames."""
        if len(frames) == 0:
            return
        self.n_frames += len(frames)
        t = torch.from_numpy(np.ascontiguousarray(frames))
        if self.bgr:
            t = t.flip(-1)
        t = t.float()  # one float conversion per frame, kept channels-last (n, H, W, 3)
        buf = t if self._tail is None else torch.cat([self._tail, t])
        n_win = len(buf) - (LIP_FRAMES - 1)
        full = max(n_win, 0) // self.batch_size * self.batch_size
        self._score(buf, full)
        self._tail = buf[full:].clone() if full else buf

    def _score(self, buf: torch.Tensor, n_win: int) -> None:
        """Lip features of the first ``n_win`` windows of ``buf``, batch by batch."""
        with torch.inference_mode():
            for i in range(0, n_win, self.batch_size):
                part = buf[i : min(i + self.batch_size, n_win) + LIP_FRAMES - 1]
                # (k+4, H, W, 3) -> (k, H, W, 3, 5) view -> (k, H, W, 5, 3) -> one copy to (k, H, W, 15),
                # seen as (k, 15, H, W) in channels-last layout: frame-major channels, as the folded kernel
                win = part.unfold(0, LIP_FRAMES, 1).permute(0, 1, 2, 4, 3)
                win = win.reshape(*win.shape[:3], -1).permute(0, 3, 1, 2)
                self._feats.append(self.net.lip(win))

    def features(self) -> torch.Tensor:
        """(n_frames - 4, fc_dim) features of every complete window so far."""
        if self._tail is not None and len(self._tail) >= LIP_FRAMES:
            n_win = len(self._tail) - (LIP_FRAMES - 1)
            self._score(self._tail, n_win)
            self._tail = self._tail[n_win:].clone()
        if not self._feats:
            return torch.zeros(0, self.net.config.fc_dim)
        if len(self._feats) > 1:
            self._feats = [torch.cat(self._feats)]
        return self._feats[0]
