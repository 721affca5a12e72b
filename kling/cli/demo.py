"""`kling demo`: the main job on the offline demo profile, as Dagster runs of the whole asset graph.

Dagster runs one partitions definition per run, so the graph is materialized in a few
`dagster asset materialize` runs, in order (RUNS below): the source inventory (on the demo profile it
generates the demo corpus), the per-video curation steps over all video partitions, the sync expert's
training, the per-video lip-sync filter, the manifest, benchmarks and controls, one evaluation run per
(benchmark, system), then the leaderboard and the dashboard. Each command is printed before it runs so a user can repeat any of them by hand; e.g. after adding
one video: `dagster asset materialize -m pipelines.definitions --select group:curation_videos --partition <id>`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

import typer

from kling.paths import Layout, dagster_home


def _video_ids() -> list[str]:
    from kling.config import load_profile
    from kling.curate.sources import profile_videos

    return [r.video_id for r in profile_videos(load_profile())]


def _eval_keys() -> list[str]:
    """(benchmark, system) partition keys as Dagster orders them: "benchmark|system", sorted."""
    from eval.runs import benchmark_names, system_names
    from kling.config import load_profile

    layout = Layout.default()
    benches = sorted(benchmark_names(load_profile()))
    systems = sorted({s for b in benches for s in system_names(layout, b)})
    return [f"{b}|{s}" for b in benches for s in systems]


# Asset groups in run order; a partitioned group gets the range of all its keys, read after the runs before
# it (the demo corpus and the control systems exist only from then on).
RUNS: list[tuple[str, Callable[[], list[str]] | None]] = [
    ("group:curation_source", None),
    ("group:curation_videos", _video_ids),
    ("group:training", None),
    ("group:curation_lipsync", _video_ids),
    ("group:curation_dataset", None),
    ("group:eval_prepare", None),
    ("group:eval_runs", _eval_keys),
    ("group:eval_report", None),
]


def _materialize(args: list[str]) -> None:
    cmd = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", "pipelines.definitions", *args]
    typer.secho("$ " + " ".join(shlex.quote(a) for a in cmd), fg="cyan")
    if subprocess.run(cmd, env=os.environ.copy()).returncode != 0:
        typer.secho(f"dagster run failed: {' '.join(args)}", fg="red", err=True)
        raise typer.Exit(1)


def run_demo(profile: str, groups: list[str] | None = None) -> None:
    """Materialize the graph run by run; `groups` limits it to those asset groups (e.g. the curation ones)."""
    os.environ["KLING_PROFILE"] = profile
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").touch()
    for selection, keys_fn in RUNS:
        if groups is not None and selection.removeprefix("group:") not in groups:
            continue
        if keys_fn is None:
            _materialize(["--select", selection])
            continue
        keys = keys_fn()
        if not keys:
            typer.secho(f"{selection}: no partitions (nothing to run)", fg="yellow")
            continue
        # Keys are ordered as the definitions list them, so first...last is every key.
        _materialize(["--select", selection, "--partition-range", f"{keys[0]}...{keys[-1]}"])
    _print_outputs()


def _print_outputs() -> None:
    from kling.config import load_profile

    layout = Layout.default()
    root = layout.curation(load_profile().name)
    typer.secho("\nFiles written:", bold=True)
    typer.echo(f"  curated manifest   {root / 'curated_clips.parquet'}")
    for step_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        n = len([p for p in step_dir.iterdir() if p.suffix == ".json"])
        typer.echo(f"  {step_dir.name + '/':<18} {step_dir}  ({n} videos)")
    reports = layout.reports
    if (reports / "leaderboard.parquet").exists():
        typer.echo(f"  leaderboard        {reports / 'leaderboard.parquet'}  (print it: kling leaderboard)")
        typer.echo(f"  run store          {layout.store}  (one Parquet per run; DuckDB view over all)")
    if (reports / "dashboard.html").exists():
        typer.secho(f"  dashboard          {reports / 'dashboard.html'}", bold=True)
    typer.echo(f"  dagster instance   {os.environ['DAGSTER_HOME']}  (browse with: dagster dev -m pipelines.definitions)")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(profile: str = typer.Option("demo", help="profile name or YAML path")) -> None:
        """Materialize every asset on the demo profile (offline, CPU) and list the files written."""
        run_demo(profile)
