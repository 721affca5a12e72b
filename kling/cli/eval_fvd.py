"""`kling eval fvd REF_DIR GEN_DIR [--weights FILE] [--json]`: FVD (common_metrics_on_video_quality videogpt)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def fvd(
    ref_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="reference videos"),
    gen_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="generated videos"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="I3D state dict i3d_pretrained_400.pt (default: registry)"),
    clip_len: int = typer.Option(16, "--clip-len", min=10, help="frames per clip (25 fps timeline)"),
    clip_stride: int = typer.Option(16, "--clip-stride", min=1, help="frames between clip starts"),
    max_clips: Optional[int] = typer.Option(None, "--max-clips", min=1, help="clips per video (default: all)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="recompute features instead of using the cache"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Fréchet Video Distance of GEN_DIR against REF_DIR (lower is better)."""
    from eval.fvd.fvd import compute_fvd
    from kling.cli.eval_fid import echo_distance

    res = compute_fvd(ref_dir, gen_dir, weights=weights, clip_len=clip_len, clip_stride=clip_stride,
                      max_clips=max_clips, cache=not no_cache)
    echo_distance(res, "FVD", "clips", as_json)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("fvd")(fvd)
