"""`kling generate`: a talking video from a reference image and an audio file; long audio goes through the
spatio-temporal cascade (blueprint, keyframes, sub-clips, transitions, super-resolution), with progress per stage."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

CASCADE_FROM_S = 10.0  # longer audio is planned as a whole (the cascade) rather than window after window


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate(
        image: Path = typer.Option(..., "--image", exists=True, dir_okay=False, help="reference image (any size; the face is found and framed)"),
        audio: Path = typer.Option(..., "--audio", exists=True, dir_okay=False, help="driving audio (any rate / channels)"),
        out: Path = typer.Option(..., "--out", help="output mp4 (OUT.json is written beside it)"),
        prompt: str = typer.Option("", "--prompt", help="text prompt"),
        first: Optional[Path] = typer.Option(None, "--first", exists=True, dir_okay=False, help="known first frame (default: the reference)"),
        last: Optional[Path] = typer.Option(None, "--last", exists=True, dir_okay=False, help="known last frame"),
        seed: int = typer.Option(0, "--seed"),
        steps: int = typer.Option(20, "--steps", help="denoising steps"),
        audio_scale: float = typer.Option(3.0, "--audio-scale", help="guidance on audio"),
        text_scale: float = typer.Option(1.5, "--text-scale", help="guidance on text"),
        negative_frame: bool = typer.Option(False, "--negative-frame", help="corrupted reference as the negative"),
        checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="avatar checkpoint or run folder (default: the trained one under $KLING_HOME)"),
        threads: int = typer.Option(0, "--threads", help="torch threads (0: torch's default)"),
        cascade: str = typer.Option("auto", "--cascade", help=f"auto (for audio over {CASCADE_FROM_S:g} s) | on | off"),
        storyline: Optional[Path] = typer.Option(None, "--storyline", exists=True, dir_okay=False,
                                                 help="the director's storyline JSON (`kling direct --out`): shots split and prompt the cascade"),
        workers: int = typer.Option(1, "--workers", help="cascade sub-clips generated in parallel processes"),
        keyframe_refine: float = typer.Option(0.0, "--keyframe-refine",
                                              help="the cascade's keyframes redrawn under their shot at this strength (0: as the blueprint drew them)"),
        blueprint_side: int = typer.Option(0, "--blueprint-side",
                                           help="the cascade's blueprint at this face side in pixels (0: the model's); needs a model "
                                                "trained at it and --keyframe-refine, which upscales the keyframes"),
        super_resolution: str = typer.Option("auto", "--super-resolution",
                                             help="the cascade's super-resolution network: auto (the trained one under "
                                                  "$KLING_HOME when there is one) | off | a checkpoint or run folder"),
    ):
        """Generate a clip with the avatar model; same seed, same machine => the same video."""
        import dataclasses
        import json

        from kling.generate.avatar_pipeline import GenerateConfig
        from kling.generate.cascade import CascadeConfig
        from kling.generate.clip import generate_clip
        from kling.io.probe import probe
        from kling.paths import Layout

        ckpt = checkpoint or Layout.default().training("avatar")
        if not ckpt.exists():
            typer.echo(f"no avatar checkpoint at {ckpt}: train it first (the training/avatar asset), or pass --checkpoint", err=True)
            raise typer.Exit(2)
        cfg = GenerateConfig(steps=steps, audio_scale=audio_scale, text_scale=text_scale, negative_frame=negative_frame, seed=seed)
        if cascade not in ("auto", "on", "off"):
            typer.echo(f"--cascade must be auto, on or off, not {cascade!r}", err=True)
            raise typer.Exit(2)
        use = cascade == "on" or (cascade == "auto" and not (first or last) and
                                  (probe(audio).audio_duration_s or 0.0) > CASCADE_FROM_S)
        try:
            plan = CascadeConfig(workers=workers, keyframe_refine=keyframe_refine, blueprint_side=blueprint_side or None)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2)
        upscaler = None
        if use and super_resolution != "off":
            from kling.models.super_resolution import load_super_resolution

            folder = Layout.default().training("super_resolution") if super_resolution == "auto" else Path(super_resolution)
            try:
                upscaler = load_super_resolution(folder)
            except FileNotFoundError as exc:
                if super_resolution != "auto":
                    typer.echo(f"error: {exc}", err=True)
                    raise typer.Exit(1)
                typer.echo(f"[super-resolution] off: {exc}")
        story = None
        if storyline is not None:
            data = json.loads(storyline.read_text())
            story = data.get("storyline", data)  # `kling direct --out` writes it beside the dialogue
        try:
            meta = generate_clip(ckpt, image, audio, out, prompt=prompt, first=first, last=last, config=cfg, threads=threads or None,
                                 cascade=dataclasses.replace(plan, super_resolution=upscaler is not None) if use else None,
                                 storyline=story, upscaler=upscaler,
                                 progress=lambda stage, msg: typer.echo(f"[{stage}] {msg}"))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{meta['output']}: {meta['frames']} frames, checkpoint {meta['checkpoint_sha256'][:12]}, seed {seed}")
