"""`kling eval fid REF_DIR GEN_DIR [--weights FILE] [--resize bilinear|clean] [--json]`: FID."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def fid(
    ref_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="reference images (or videos)"),
    gen_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="generated images (or videos)"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="pytorch-fid Inception state dict (default: registry)"),
    resize: str = typer.Option("bilinear", "--resize", help="bilinear (pytorch-fid) or clean (clean-fid)"),
    frame_stride: int = typer.Option(5, "--frame-stride", min=1, help="videos: every N-th frame at 25 fps"),
    no_cache: bool = typer.Option(False, "--no-cache", help="recompute features instead of using the cache"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Fréchet Inception Distance of GEN_DIR against REF_DIR (lower is better)."""
    from eval.fid.features import RESIZE_MODES
    from eval.fid.fid import compute_fid

    if resize not in RESIZE_MODES:
        raise typer.BadParameter(f"choose one of {', '.join(RESIZE_MODES)}", param_hint="--resize")
    res = compute_fid(ref_dir, gen_dir, weights=weights, resize=resize, frame_stride=frame_stride,
                      cache=not no_cache, batch_size=batch_size)
    echo_distance(res, "FID", "images", as_json)


def echo_distance(res, label: str, counted: str, as_json: bool) -> None:
    """Print a DistanceResult (FID or FVD) as JSON or one line, list skipped inputs; exit 2 if unavailable."""
    if as_json:
        typer.echo(json.dumps(res.to_dict(), default=str))
    elif res.ok:
        typer.echo(f"{label} {res.value:.4f}  ({counted}: reference {res.n_ref}, generated {res.n_gen})"
                   f"  [{res.backbone} {(res.backbone_sha256 or '')[:12]}, {res.protocol_version}]")
    else:
        typer.echo(f"{label} unavailable: {res.reason}")
    for s in res.skipped:
        typer.echo(f"  skipped {s['path']}: {s['reason']}", err=True)
    if not res.ok:
        raise typer.Exit(2)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("fid")(fid)
