"""Every weight-free fidelity metric of one case against its ground truth: the rows eval.suite would add."""

from __future__ import annotations

from pathlib import Path

from eval.fidelity.lmd import LandmarkReader, lmd_rows
from eval.fidelity.pixels import pixel_rows


def fidelity_rows(video: str | Path, truth: str | Path, clip_id: str, reader: LandmarkReader | None = None) -> list[dict]:
    """PSNR, SSIM (pixels-v1) and LMD + its face rate (lmd-v1) of `video` against `truth`."""
    return pixel_rows(video, truth, clip_id) + lmd_rows(video, truth, clip_id, reader)
