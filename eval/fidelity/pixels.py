"""PSNR and SSIM against the ground truth (torchmetrics' functional forms).

Protocol ``pixels-v2`` (recorded in PROTOCOL and in every row):
1. Both videos on the 25 fps constant-rate timeline (kling.io.decode.iter_frames); frame i is compared with
   frame i; only the first min(n_generated, n_truth) frames count (the shorter length is recorded as n).
2. The generated frame is resized to the ground truth's size with OpenCV INTER_AREA when it shrinks and
   INTER_CUBIC when it grows (identity when the sizes match); RGB float32 in [0, 1], data_range = 1.0.
   (v1 computed in float64: SSIM's Gaussian filter then took 23x longer, measured on 8 demo frames, for
   values within 3e-6 of float32's.)
3. PSNR: torchmetrics.functional.peak_signal_noise_ratio per frame (over all pixels and channels); SSIM:
   torchmetrics.functional.structural_similarity_index_measure per frame, Gaussian kernel 11, sigma 1.5,
   k1 0.01, k2 0.03, on RGB (mean over channels), then the clip value = mean over frames; stderr = the
   frames' standard error.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from kling.clock import FPS
from kling.io.decode import iter_frames

PROTOCOL_VERSION = "pixels-v2"
PROTOCOL = {"name": PROTOCOL_VERSION, "fps": FPS, "resize": "generated -> ground-truth size; cv2 INTER_AREA down, INTER_CUBIC up",
            "dtype": "float32", "data_range": 1.0, "ssim": {"kernel": "gaussian", "kernel_size": 11, "sigma": 1.5, "k1": 0.01, "k2": 0.03},
            "aggregation": "mean over frames (stderr over frames)", "frames": "first min(n_generated, n_truth)"}


def resize_to(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    if frame.shape[:2] == (h, w):
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] * frame.shape[1] > h * w else cv2.INTER_CUBIC
    return cv2.resize(frame, (w, h), interpolation=interp)


def _tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255.0)


def frame_scores(generated: np.ndarray, truth: np.ndarray, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (PSNR, SSIM) of two (n, H, W, 3) uint8 arrays (generated resized to truth's size), in
    batches of `batch` frames (SSIM's Gaussian filtering holds several copies of its input)."""
    n = min(len(generated), len(truth))
    psnr, ssim = [], []
    for a in range(0, n, batch):
        gen = _tensor(np.stack([resize_to(f, truth.shape[1:3]) for f in generated[a: min(n, a + batch)]]))
        ref = _tensor(truth[a: min(n, a + batch)])
        psnr.append(peak_signal_noise_ratio(gen, ref, data_range=1.0, reduction="none", dim=(1, 2, 3)))
        ssim.append(structural_similarity_index_measure(gen, ref, data_range=1.0, kernel_size=11, sigma=1.5, k1=0.01,
                                                        k2=0.03, reduction="none"))
    if not psnr:
        return np.zeros(0), np.zeros(0)
    return torch.cat(psnr).numpy(), torch.cat(ssim).numpy()


def paired_chunks(generated: str | Path, truth: str | Path, chunk: int = 32):
    """Frame-aligned (generated, truth) chunks of two videos on the 25 fps timeline, streamed (memory flat in
    length); stops at the shorter video."""
    gen_it, ref_it = iter_frames(generated, fps=FPS, chunk_size=chunk), iter_frames(truth, fps=FPS, chunk_size=chunk)
    g = r = np.zeros((0,), np.uint8)
    while True:
        if len(g) == 0:
            g = next((c.frames for c in gen_it), None)
        if len(r) == 0:
            r = next((c.frames for c in ref_it), None)
        if g is None or r is None:
            return
        k = min(len(g), len(r))
        yield g[:k], r[:k]
        g, r = g[k:], r[k:]


def _stat(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def pixel_rows(generated: str | Path, truth: str | Path, clip_id: str) -> list[dict]:
    """Partial leaderboard rows (psnr, ssim) of one case."""
    scores = [frame_scores(g, r) for g, r in paired_chunks(generated, truth)]
    psnr = np.concatenate([p for p, _ in scores]) if scores else np.zeros(0)
    ssim = np.concatenate([s for _, s in scores]) if scores else np.zeros(0)
    rows = []
    for metric, values in (("psnr", psnr), ("ssim", ssim)):
        value, se = _stat(values)
        rows.append({"clip_id": clip_id, "window": "all", "metric": metric, "value": value, "stderr": se,
                     "n": int(len(values)), "higher_is_better": True, "backbone": "none", "backbone_sha256": "",
                     "protocol_version": PROTOCOL_VERSION, "status": "ok", "reason": None})
    return rows
