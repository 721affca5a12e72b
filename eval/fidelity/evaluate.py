"""Every weight-free fidelity metric of one case against its ground truth: the rows eval.suite adds."""

from __future__ import annotations

from pathlib import Path

from eval.fidelity.lmd import lmd_rows
from eval.fidelity.pixels import pixel_rows


def fidelity_rows(video: str | Path, truth: str | Path, clip_id: str, detector=None, cache: bool = True) -> list[dict]:
    """PSNR, SSIM (pixels-v3) and LMD + its face rate (lmd-v2) of `video` against `truth`: the same
    computations as eval.suite.evaluate_case, hence the same rows (`detector`: a detector or its name, None
    the suite's default "auto"; `cache`: read and keep the ground truth's face tracks in the feature cache)."""
    return pixel_rows(video, truth, clip_id) + lmd_rows(video, truth, clip_id, detector, cache)
