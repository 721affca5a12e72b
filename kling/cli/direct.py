"""`kling direct --image IMG [--image IMG2] --audio WAV [--audio WAV2] --instruction TEXT [--backend ...]
[--llm-url URL] [--model NAME] [--json] [--out FILE]`: the storyline of one case."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer


def direct_cmd(
    image: List[Path] = typer.Option(..., "--image", help="reference image (repeat for several)"),
    audio: List[Path] = typer.Option(..., "--audio", help="driving audio, one track per speaker (repeat)"),
    instruction: str = typer.Option("", "--instruction", "-i", help="what the video should show (any language)"),
    speaker: Optional[List[str]] = typer.Option(None, "--speaker", help="a name per audio track (characters)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="offline | openai (default: profile); embedded was measured and dropped"),
    llm_url: Optional[str] = typer.Option(None, "--llm-url", help="OpenAI-compatible endpoint (or OPENAI_BASE_URL)"),
    model: Optional[str] = typer.Option(None, "--model", help="model name at the endpoint (or OPENAI_MODEL)"),
    fallback: Optional[str] = typer.Option(None, "--fallback", help="backend that answers when this one fails"),
    rounds: int = typer.Option(3, "--rounds", min=2, help="at most this many dialogue rounds"),
    profile: Optional[str] = typer.Option(None, "--profile", help="profile name or YAML (default $KLING_PROFILE)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the storyline and dialogue here (JSON, atomic)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (a failure: status and reason)"),
) -> None:
    """Direct one case: audio, visual and text experts reason in rounds and write a storyline with negatives."""
    from kling.config import load_profile
    from kling.director import DirectorConfig, DirectorError, direct
    from kling.llm import LLMClient, llm_config

    t0 = time.perf_counter()

    def fail(reason: str, transcript=None) -> None:
        if as_json:
            typer.echo(json.dumps({"status": "failed", "reason": reason, "dialogue": transcript or []}, default=str))
        else:
            typer.echo(f"direct: failed: {reason}", err=True)
        raise typer.Exit(1)

    try:
        cfg = llm_config(load_profile(profile).section("llm"), backend=backend, base_url=llm_url, model=model,
                         fallback=fallback)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    asr = None
    if cfg.asr_url and cfg.asr_model:
        from kling.director.asr import Transcriber

        asr = Transcriber(cfg.asr_url, cfg.asr_model, cfg.api_key, cfg.timeout_s)
    try:
        res = direct(image, audio, instruction, LLMClient(cfg),
                     DirectorConfig(max_rounds=rounds, speakers=list(speaker) if speaker else None), asr=asr)
    except DirectorError as exc:
        fail(exc.reason, exc.transcript)
    res.seconds["total"] = round(time.perf_counter() - t0, 3)
    if out is not None:
        res.write(out)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), ensure_ascii=False, default=str))
        return
    s = res.storyline
    typer.echo(f"storyline ({s.status}, backend {s.backend}, {s.duration_s:.2f} s, {len(s.shots)} shots, "
               f"{res.seconds['total']:.1f} s)")
    typer.echo(f"  global: {s.global_prompt}")
    for why in s.reasons:
        typer.echo(f"  note: {why}")
    for c in res.readings["reconciled"]["conflicts"]:
        typer.echo(f"  conflict [{c['aspect']}] {c['statement']} -> {c['winner']}: {c['resolution']}")
    for i, sh in enumerate(s.shots):
        typer.echo(f"  shot {i}: {sh.t_start:6.2f}-{sh.t_end:6.2f} s  {sh.speaker:<10} {sh.emotion:<9} "
                   f"{sh.head_motion:<7} {sh.camera}")
        typer.echo(f"          prompt: {sh.prompt}")
        typer.echo(f"          negative: {', '.join(s.negatives.shots[i].negatives)}")
    typer.echo(f"  global negative: {', '.join(s.negatives.global_negatives)}")
    typer.echo(f"  dialogue: {len(res.transcript)} turns")


def register(app: typer.Typer) -> None:
    app.command("direct")(direct_cmd)
