"""PSNR and SSIM against the ground truth (torchmetrics' functional forms).

Protocol ``pixels-v3`` (recorded in PROTOCOL and in every row):
1. Both videos on the 25 fps constant-rate timeline (kling.io.decode.iter_frames); frame i is compared with
   frame i; only the first min(n_generated, n_truth) frames count (the shorter length is recorded as n).
2. The generated frame is resized to the ground truth's size with OpenCV INTER_AREA when it shrinks and
   INTER_CUBIC when it grows (identity when the sizes match); RGB float32 in [0, 1], data_range = 1.0.
   (v1 computed in float64: SSIM's Gaussian filter then took 23x longer, measured on 8 demo frames, for
   values within 3e-6 of float32's.)
3. PSNR: torchmetrics.functional.peak_signal_noise_ratio per frame (over all pixels and channels), capped at
   PSNR_CAP_DB = 100 dB; SSIM: torchmetrics.functional.structural_similarity_index_measure per frame,
   Gaussian kernel 11, sigma 1.5, k1 0.01, k2 0.03, on RGB (mean over channels); the clip value = mean over
   frames; stderr = the frames' standard error.

What changed from v2: the cap. Identical frames have MSE 0 and PSNR +inf (the ground-truth control's video
can equal its ground truth); v2 left infinite frames out of the clip's mean, so a video equal to its ground
truth got NaN (which the leaderboard's aggregates count as missing) and one equal in some frames was scored on
its other frames only, i.e. marked down for its exact frames. A cap at 100 dB is the common convention (many
super-resolution and codec evaluation scripts return 100 for MSE 0); it sits at the resolution of 8-bit video,
not below anything a generator can reach: one pixel channel off by one level in a 256x256 frame is 101 dB, so
only frames equal or within a few such level steps are capped. Frames are scored in batches of BATCH_PIXELS
(speed and memory only: a 125-frame 256x256 clip gave the same values in batches of 8 and of 32).

`FidelityConsumer` computes the per-frame scores while the evaluation suite streams the generated video
through its other metrics (kling.io.frames.decode_once) and reads the ground truth alongside; `pixel_rows`
runs that same consumer on its own, so the standalone numbers and the suite's are one computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from kling.clock import FPS
from kling.io.errors import MediaError

PROTOCOL_VERSION = "pixels-v3"
PSNR_CAP_DB = 100.0
CHUNK = 32  # frames per decoded chunk: the evaluation suite's decode_once chunk, so both paths batch alike
# Pixels scored per torchmetrics call: 8 frames of 512x512 (measured: peak +0.7 GB, SSIM's filtered
# copies). Bigger batches run faster (SSIM of 64 frames of 256x256: 3.5 s in batches of 8, 2.2 s in batches of
# 32, on this machine's 2 shared cores); frames the size of 1080p go one at a time.
BATCH_PIXELS = 8 * 512 * 512
PROTOCOL = {"name": PROTOCOL_VERSION, "fps": FPS, "resize": "generated -> ground-truth size; cv2 INTER_AREA down, INTER_CUBIC up",
            "dtype": "float32", "data_range": 1.0, "psnr_cap_db": PSNR_CAP_DB,
            "ssim": {"kernel": "gaussian", "kernel_size": 11, "sigma": 1.5, "k1": 0.01, "k2": 0.03},
            "aggregation": "mean over frames (stderr over frames)", "frames": "first min(n_generated, n_truth)"}


def resize_to(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    if frame.shape[:2] == (h, w):
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] * frame.shape[1] > h * w else cv2.INTER_CUBIC
    return cv2.resize(frame, (w, h), interpolation=interp)


def _tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255.0)


def frame_scores(generated: np.ndarray, truth: np.ndarray, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (PSNR capped at PSNR_CAP_DB, SSIM) of two (n, H, W, 3) uint8 arrays (generated resized to
    truth's size), in batches of `batch` frames (SSIM's Gaussian filtering holds several copies of its input;
    None: as many frames as BATCH_PIXELS allows, at least one)."""
    n = min(len(generated), len(truth))
    batch = batch or max(1, min(32, BATCH_PIXELS // max(1, truth.shape[1] * truth.shape[2])))
    psnr, ssim = [], []
    for a in range(0, n, batch):
        gen = _tensor(np.stack([resize_to(f, truth.shape[1:3]) for f in generated[a: min(n, a + batch)]]))
        ref = _tensor(truth[a: min(n, a + batch)])
        p = peak_signal_noise_ratio(gen, ref, data_range=1.0, reduction="none", dim=(1, 2, 3))
        psnr.append(torch.clamp(p, max=PSNR_CAP_DB))  # MSE 0 gives +inf: capped (see the protocol)
        ssim.append(structural_similarity_index_measure(gen, ref, data_range=1.0, kernel_size=11, sigma=1.5, k1=0.01,
                                                        k2=0.03, reduction="none"))
    if not psnr:
        return np.zeros(0), np.zeros(0)
    return torch.cat(psnr).numpy(), torch.cat(ssim).numpy()


class TruthStream:
    """The ground truth's frames on the 25 fps timeline, handed out in order by frame range while it is
    decoded chunk by chunk: only the frames not yet asked for are held (at most about one chunk)."""

    def __init__(self, path: str | Path, chunk: int = CHUNK):
        self.path, self.chunk = Path(path), chunk
        self._it = None
        self._held = np.zeros((0,), np.uint8)
        self._start = 0  # timeline index of _held[0]
        self.ended = False

    def take(self, start: int, n: int) -> np.ndarray:
        """Frames [start, start + n) of the ground truth, fewer (or none) where it ends first. Ranges come in
        order and without gaps (as decode_once's chunks do)."""
        from kling.io.decode import iter_frames

        if start != self._start:
            raise ValueError(f"ground-truth frames asked out of order: {start}, expected {self._start}")
        if self._it is None:
            self._it = iter_frames(self.path, fps=FPS, chunk_size=self.chunk)
        while len(self._held) < n and not self.ended:
            c = next(self._it, None)
            if c is None:
                self.ended = True
            else:
                self._held = c.frames if len(self._held) == 0 else np.concatenate([self._held, c.frames])
        out, self._held = self._held[:n], self._held[n:]
        self._start += n
        return out

    def close(self) -> None:
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()  # a ground truth longer than the generated video is not decoded to its end
        self._it = None


@dataclass
class PixelScores:
    """Per-frame PSNR and SSIM of one generated video against its ground truth (`reason`: why there are none)."""

    psnr: np.ndarray
    ssim: np.ndarray
    reason: str | None = None

    def to_rows(self, clip_id: str) -> list[dict]:
        """Partial leaderboard rows (psnr, ssim) of one case."""
        rows = []
        for metric, values in (("psnr", self.psnr), ("ssim", self.ssim)):
            base = {"clip_id": clip_id, "window": "all", "metric": metric, "higher_is_better": True, "backbone": "none",
                    "backbone_sha256": "", "protocol_version": PROTOCOL_VERSION}
            v = values[np.isfinite(values)]
            if self.reason is not None or not len(v):
                rows.append(base | {"value": None, "stderr": None, "n": 0, "status": "unavailable",
                                    "reason": self.reason or "no frame in common with the ground truth"})
                continue
            se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
            rows.append(base | {"value": float(v.mean()), "stderr": se, "n": int(len(v)), "status": "ok", "reason": None})
        return rows


class FidelityConsumer:
    """A kling.io.frames.decode_once consumer: fed the generated video's chunks, it reads the ground truth's
    same frames itself (TruthStream) and keeps two floats per frame, so memory stays flat in the video's
    length. A ground truth that cannot be read gives `unavailable` rows with the reason; the generated
    video's other metrics are not affected."""

    def __init__(self, truth: str | Path):
        self.truth = TruthStream(truth)
        self._psnr: list[np.ndarray] = []
        self._ssim: list[np.ndarray] = []
        self._reason: str | None = None

    def update(self, chunk) -> None:
        if self._reason is not None:
            return
        try:
            ref = self.truth.take(chunk.start, len(chunk.frames))
        except MediaError as exc:
            self._reason = f"ground truth {self.truth.path.name} unreadable ({exc.reason}): {exc}"
            self.truth.close()
            return
        if len(ref):
            p, s = frame_scores(chunk.frames[: len(ref)], ref)
            self._psnr.append(p)
            self._ssim.append(s)

    def finish(self, n_frames: int) -> PixelScores:
        self.truth.close()
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
        return PixelScores(cat(self._psnr), cat(self._ssim), self._reason)


def pixel_scores(generated: str | Path, truth: str | Path) -> PixelScores:
    """The suite's computation on its own: the generated video decoded once through a FidelityConsumer."""
    from kling.io.frames import decode_once

    return decode_once(generated, {"pixels": FidelityConsumer(truth)}, chunk_size=CHUNK)["pixels"]


def pixel_rows(generated: str | Path, truth: str | Path, clip_id: str) -> list[dict]:
    """Partial leaderboard rows (psnr, ssim) of one case."""
    return pixel_scores(generated, truth).to_rows(clip_id)
