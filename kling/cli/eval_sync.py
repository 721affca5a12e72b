"""`kling eval sync VIDEO... [--audio WAV] [--weights FILE] [--cropped] [--json]`: Sync-C / Sync-D."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

JSON_KEYS = ("video", "status", "reason", "av_offset", "sync_c", "sync_d", "offset_dists", "speaker_track",
             "tracks", "backbone", "backbone_sha256", "protocol_version", "fetch_command", "warnings")


def sync(
    videos: List[Path] = typer.Argument(..., help="videos to score (one model load for all)"),
    audio: Optional[Path] = typer.Option(None, "--audio", help="score against this audio instead of the video's own"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="SyncNet state dict (default: registry syncnet_v2)"),
    expert: Optional[Path] = typer.Option(None, "--expert", help="use a self-trained sync expert checkpoint instead"),
    cropped: bool = typer.Option(False, "--cropped", help="videos already are face crops (the reference demo's input)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per video per line"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)"),
) -> None:
    """Lip sync (SyncNet): AV offset, Sync-C (confidence, higher is better), Sync-D (distance, lower is better)."""
    import torch

    from kling.perception.sync.pipeline import SyncEvaluator

    if threads:
        torch.set_num_threads(threads)
    if expert is not None:
        from kling.perception.sync.expert import expert_evaluator

        ev = expert_evaluator(expert, batch_size=batch_size)
    else:
        ev = SyncEvaluator.official(weights, batch_size=batch_size)
    n_bad = 0
    for res in ev.evaluate_many(videos, audio=audio, cropped=cropped):
        d = res.to_dict()
        n_bad += not res.ok
        if as_json:
            row = {k: d[k] for k in JSON_KEYS}
            row["seconds"] = None if res.seconds is None else round(res.seconds, 3)
            typer.echo(json.dumps(row))
        elif res.ok:
            extra = f"  tracks {len(res.tracks)}, speaker {res.speaker_track}" if len(res.tracks) > 1 else ""
            typer.echo(f"{res.video}: AV offset {res.av_offset:+d}  Sync-C {res.sync_c:.3f}  Sync-D {res.sync_d:.3f}"
                       f"  [{res.backbone} {(res.backbone_sha256 or '')[:12]}, {res.protocol_version}]{extra}")
            for w in res.warnings:
                typer.echo(f"  warning: {w}", err=True)
        else:
            typer.echo(f"{res.video}: unavailable: {res.reason}")
    if n_bad == len(videos) and ev.backbone is None:
        raise typer.Exit(2)  # nothing could be scored at all (weights missing)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("sync")(sync)
