"""`kling demo`: the main job on the offline demo profile, as Dagster runs of the whole asset graph.

Dagster runs one partitions definition per run, so the graph is materialized in a few
`dagster asset materialize` runs, in order: the source inventory (on the demo profile it generates the demo
corpus), every per-video curation step over all video partitions in one run, then the dataset-level
assets. Each command is printed before it runs so a user can repeat any of them by hand; e.g. after adding
one video: `dagster asset materialize -m pipelines.definitions --select group:curation_videos --partition <id>`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import typer

from kling.paths import kling_home

# Asset groups in run order, and whether a group is partitioned per source video.
RUNS: list[tuple[str, bool]] = [
    ("group:curation_source", False),
    ("group:curation_videos", True),
    ("group:curation_dataset", False),
]


def _materialize(args: list[str]) -> None:
    cmd = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipelines.definitions", *args]
    typer.secho("$ " + " ".join(shlex.quote(a) for a in cmd), fg="cyan")
    if subprocess.run(cmd, env=os.environ.copy()).returncode != 0:
        typer.secho(f"dagster run failed: {' '.join(args)}", fg="red", err=True)
        raise typer.Exit(1)


def _video_ids() -> list[str]:
    from kling.config import load_profile
    from kling.curate.sources import discover_videos

    profile = load_profile()
    return [r.video_id for r in discover_videos(profile.source_dir(), recursive=profile.section("source").get("recursive", True))]


def run_demo(profile: str) -> None:
    os.environ["KLING_PROFILE"] = profile
    os.environ.setdefault("DAGSTER_HOME", str(kling_home() / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").touch()
    for selection, per_video in RUNS:
        if not per_video:
            _materialize(["--select", selection])
            continue
        ids = _video_ids()  # read after the source run: the demo corpus exists only from then on
        if not ids:
            typer.secho("no source videos found: nothing to curate", fg="yellow")
            continue
        # Partition keys are ordered as the definitions list them (sorted paths), so first...last is all.
        _materialize(["--select", selection, "--partition-range", f"{ids[0]}...{ids[-1]}"])
    _print_outputs()


def _print_outputs() -> None:
    from kling.config import load_profile
    from kling.paths import data_dir

    root = data_dir() / "curation" / load_profile().name
    typer.secho("\nFiles written:", bold=True)
    typer.echo(f"  curated manifest   {root / 'curated_clips.parquet'}")
    for step_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        n = len([p for p in step_dir.iterdir() if p.suffix == ".json"])
        typer.echo(f"  {step_dir.name + '/':<18} {step_dir}  ({n} videos)")
    for extra in sorted(data_dir().glob("*/**/*.html")):
        typer.echo(f"  dashboard          {extra}")
    typer.echo(f"  dagster instance   {os.environ['DAGSTER_HOME']}  (browse with: dagster dev -m pipelines.definitions)")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(profile: str = typer.Option("demo", help="profile name or YAML path")) -> None:
        """Materialize every asset on the demo profile (offline, CPU) and list the files written."""
        run_demo(profile)
