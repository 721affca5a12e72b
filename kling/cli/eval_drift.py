"""`kling eval drift VIDEO [--window 10] [--segment S | --boundary F ...] [--json]`: quality over time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def drift(
    video: Path = typer.Argument(..., exists=True, dir_okay=False, help="video to analyse"),
    window: float = typer.Option(10.0, "--window", min=0.1, help="window length in seconds"),
    segment: Optional[float] = typer.Option(None, "--segment", min=0.1,
                                            help="sub-clip length in seconds: score the stitches at its multiples"),
    boundary: Optional[List[int]] = typer.Option(None, "--boundary", help="stitch frame (25 fps); repeatable"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Per-window sharpness and its drift, appearance consistency across far windows, transition smoothness."""
    from eval.temporal.drift import evaluate_drift
    from kling.io.errors import MediaError

    try:
        res = evaluate_drift(video, window_s=window, boundaries=list(boundary) if boundary else None, segment_s=segment)
    except MediaError as exc:
        typer.echo(f"{video}: {exc}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), default=str))
        return
    s = res.sharpness
    fmt = lambda v: "n/a" if v is None else f"{v:.4g}"  # noqa: E731
    ci = lambda c: "" if c is None else f" [{c[0]:.4g}, {c[1]:.4g}]"  # noqa: E731
    typer.echo(f"{video}: {res.n_frames} frames, {len(res.windows)} windows of {window:g}s  [{res.protocol_version}]")
    for label, v in zip(res.windows, s.window_means):
        typer.echo(f"  {label:>12}: sharpness {fmt(v)}")
    typer.echo(f"  sharpness drift: slope {fmt(s.slope_per_min)}/min{ci(s.slope_ci)}, last/first {fmt(s.ratio_last_first)}")
    a = res.appearance
    typer.echo(f"  appearance consistency: first-last {fmt(a['first_last'])}, min far apart {fmt(a['min_far'])}")
    t = res.transitions
    w = t.worst
    kind = "detected" if t.detected else "given"
    typer.echo(f"  transitions ({kind}): {len(t.boundaries)} boundaries, worst "
               + (f"frame {w.frame} z {w.z:.1f}" if w else "none") + f", max z over frames {fmt(t.max_z)}")


def register(eval_app: typer.Typer) -> None:
    eval_app.command("drift")(drift)
