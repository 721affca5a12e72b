"""`kling eval adherence --instruction TEXT|--case FILE VIDEO [--judge-url URL --judge-model NAME] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def adherence(
    video: Path = typer.Argument(..., help="video to check", exists=True, dir_okay=False),
    instruction: Optional[str] = typer.Option(None, "--instruction", "-i", help="instruction text"),
    case: Optional[Path] = typer.Option(None, "--case", exists=True, dir_okay=False,
                                        help="benchmark case (YAML/JSON: instruction and/or assertions)"),
    judge_url: Optional[str] = typer.Option(None, "--judge-url", envvar="KLING_JUDGE_URL",
                                            help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", envvar="KLING_JUDGE_MODEL"),
    judge_timeout: float = typer.Option(60.0, "--judge-timeout", min=0.1, help="seconds per judge request"),
    window: float = typer.Option(10.0, "--window", min=0.1, help="window length in seconds"),
    detector: str = typer.Option("auto", "--detector", help="face detector: auto, dlib or scrfd"),
    failed_parquet: Optional[Path] = typer.Option(None, "--failed-parquet", help="write failed assertions here"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Prompt adherence: the fraction of the instruction's assertions that the video satisfies."""
    from eval.adherence.score import evaluate_adherence, write_assertions_parquet
    from kling.io.errors import MediaError

    if (instruction is None) == (case is None):
        raise typer.BadParameter("give exactly one of --instruction or --case")
    if bool(judge_url) != bool(judge_model):
        raise typer.BadParameter("--judge-url and --judge-model go together")
    try:
        res = evaluate_adherence(video, instruction, case=case, judge_url=judge_url, judge_model=judge_model,
                                 judge_timeout_s=judge_timeout, window_s=window, detector=detector)
    except MediaError as exc:
        typer.echo(f"{video}: {exc}", err=True)
        raise typer.Exit(1)
    if failed_parquet is not None:
        write_assertions_parquet([res], failed_parquet)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), default=str))
    elif res.status != "ok":
        typer.echo(f"{video}: unavailable: {res.reason}")
    else:
        c = res.counts()
        typer.echo(f"{video}: adherence {res.score:.3f}  ({c['satisfied']} satisfied, {c['failed']} failed, "
                   f"{c['unavailable']} unavailable; parser {res.protocol['parser']}, {res.protocol_version})")
        for r in res.results:
            val = "" if r.value is None else f"  measured {r.value:.3g}" + (
                "" if r.threshold is None else f" vs {r.threshold:.3g}")
            why = f"  ({r.reason})" if r.reason else ""
            typer.echo(f"  [{r.status:>11}] {r.assertion.id}  {r.start_s:.1f}-{r.end_s:.1f} s{val}{why}")
        for w in res.window_scores():
            typer.echo(f"  window {w['window']:>10}: " + ("-" if w["score"] is None else f"{w['score']:.3f}")
                       + f" of {w['n']}")
    if res.status != "ok":
        raise typer.Exit(2)


def register(eval_app: typer.Typer) -> None:
    eval_app.command("adherence")(adherence)
