"""`kling eval identity --reference IMG [--reference IMG2 ...] VIDEO [--backbone arcface|dlib] [--json]`: CSIM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def identity(
    video: Path = typer.Argument(..., help="video to score", exists=True, dir_okay=False),
    reference: List[Path] = typer.Option(..., "--reference", "-r", exists=True, dir_okay=False,
                                         help="reference face image; repeat for several characters"),
    backbone: str = typer.Option("arcface", "--backbone", help="arcface (insightface w600k_r50) or dlib (offline)"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="ArcFace ONNX file (default: registry)"),
    stride: Optional[int] = typer.Option(None, "--stride", min=1, help="sample every N-th frame at 25 fps (default 5)"),
    window: Optional[float] = typer.Option(None, "--window", min=0.1, help="window length in seconds (default 10)"),
    detector: str = typer.Option("auto", "--detector", help="face detector: auto, dlib or scrfd"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Identity similarity (cosine of face embeddings) of VIDEO to the reference face(s), per clip and window."""
    from eval.identity.backbones import BACKBONES
    from eval.identity.evaluate import evaluate_identity
    from kling.io.errors import MediaError

    if backbone not in BACKBONES:
        raise typer.BadParameter(f"choose one of {', '.join(BACKBONES)}", param_hint="--backbone")
    try:
        res = evaluate_identity(video, reference, backbone, weights_path=weights, stride_frames=stride,
                                window_s=window, detector=detector)
    except MediaError as exc:
        typer.echo(f"{video}: {exc}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), default=str))
    elif res.status != "ok":
        typer.echo(f"{video}: unavailable: {res.reason}")
    else:
        ww = res.worst_window
        typer.echo(f"{video}: CSIM {res.csim:.4f}  face found {res.face_found_rate:.1%} of {res.n_sampled} sampled frames"
                   f"  [{res.backbone} {res.backbone_sha256[:12]}, {res.protocol_version}]")
        if ww is not None:
            typer.echo(f"  worst window {ww.label}: {ww.csim:.4f}")
        for w in res.windows:
            shown = "no face" if w.csim is None else f"{w.csim:.4f}"
            typer.echo(f"  {w.label:>12}: {shown}  (face found {w.face_found_rate:.0%})")
        if len(res.characters) > 1:
            for c in res.characters:
                score = "MISSING" if c.missing else f"{c.csim:.4f}"
                typer.echo(f"  character {c.index} ({c.reference}): {score}  tracks {c.tracks}")
    if res.status != "ok":
        raise typer.Exit(2)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("identity")(identity)
