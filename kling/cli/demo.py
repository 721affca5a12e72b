"""`kling demo`: the main job on the offline demo profile, as Dagster runs of the whole asset graph.

Dagster runs one partitions definition per run, so the graph is materialized in one
`dagster asset materialize` run per asset group, in the order pipelines.run_order reads from the loaded
definitions (groups in topological order, each over every key of its partitions definition): the source
inventory (on the demo profile it generates the demo corpus), the per-video curation steps, the sync
expert's training, the per-video lip-sync filter, the manifest, benchmarks and controls, one evaluation run
per (benchmark, system), then the leaderboard and the dashboard. Each command is printed before it runs so
a user can repeat any of them by hand; e.g. after adding one video:
`dagster asset materialize -m pipelines.definitions --select group:curation_videos --partition <id>`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import typer

from kling.paths import Layout, dagster_home


def _materialize(args: list[str]) -> None:
    from pipelines.run_order import MODULE

    cmd = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m", MODULE, *args]
    typer.secho("$ " + " ".join(shlex.quote(a) for a in cmd), fg="cyan")
    if subprocess.run(cmd, env=os.environ.copy()).returncode != 0:
        typer.secho(f"dagster run failed: {' '.join(args)}", fg="red", err=True)
        raise typer.Exit(1)


def run_demo(profile: str, groups: list[str] | None = None) -> None:
    """Materialize the graph run by run; `groups` limits it to those asset groups (e.g. the curation ones)."""
    # The CLI is the top layer: it reads the run order from pipelines/, imported here only.
    from pipelines.run_order import group_order, load_definitions, materialize_args

    os.environ["KLING_PROFILE"] = profile
    os.environ.setdefault("DAGSTER_HOME", str(dagster_home()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").touch()
    order = group_order(load_definitions(fresh=True))
    unknown = sorted(set(groups or []) - set(order))
    if unknown:
        raise typer.BadParameter(f"no asset group {unknown} in the definitions (groups: {order})")
    for group in order:
        if groups is not None and group not in groups:
            continue
        # loaded again before each run: partition keys come from folders the runs before it filled
        args = materialize_args(load_definitions(fresh=True), group)
        if args is None:
            typer.secho(f"group:{group}: no partitions (nothing to run)", fg="yellow")
            continue
        _materialize(args)
    _print_outputs()


def _print_outputs() -> None:
    from eval.runs import DASHBOARD_FILE, LEADERBOARD_FILE
    from kling.config import load_profile
    from kling.curate.steps import MANIFEST_NAME

    layout = Layout.default()
    root = layout.curation(load_profile().name)
    typer.secho("\nFiles written:", bold=True)
    typer.echo(f"  curated manifest   {root / MANIFEST_NAME}")
    for step_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        n = len([p for p in step_dir.iterdir() if p.suffix == ".json"])
        typer.echo(f"  {step_dir.name + '/':<18} {step_dir}  ({n} videos)")
    reports = layout.reports
    if (reports / LEADERBOARD_FILE).exists():
        typer.echo(f"  leaderboard        {reports / LEADERBOARD_FILE}  (print it: kling leaderboard)")
        typer.echo(f"  run store          {layout.store}  (one Parquet per run; DuckDB view over all)")
    if (reports / DASHBOARD_FILE).exists():
        typer.secho(f"  dashboard          {reports / DASHBOARD_FILE}", bold=True)
    typer.echo(f"  dagster instance   {os.environ['DAGSTER_HOME']}  (browse with: dagster dev -m pipelines.definitions)")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(profile: str = typer.Option("demo", help="profile name or YAML path")) -> None:
        """Materialize every asset on the demo profile (offline, CPU) and list the files written."""
        run_demo(profile)
