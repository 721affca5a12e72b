"""`kling curate FOLDER [--profile P]`: curate a folder of the user's own videos, with no demo assumptions.

The profile (default: the demo profile's settings) is copied with `source: {kind: folder, path: FOLDER}` and
written to $KLING_HOME/profiles/<name>.yaml; the curation asset groups of the same Dagster definitions as
`kling demo` are then materialized on it (kling.cli.demo.run_demo), writing under $KLING_HOME. Evaluation is
not run: benchmarks from the kept clips are `kling benchmark from-clips` (or `kling demo --profile` on the
written profile, whose `demo` benchmark is then built from the folder).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

# Asset groups of curation: those named curation*, read from the loaded definitions (plus the sync expert's
# training when the expert judges lip sync).
CURATION_PREFIX = "curation"


def folder_profile(folder: Path, base: str | None = None, name: str | None = None) -> Path:
    """Write the profile that curates `folder`: `base` (a profile name or YAML path; default demo) with its
    source set to the folder. Returns its path under $KLING_HOME/profiles. Raises ValueError / FileNotFoundError
    with a message for the user (no such folder, no video in it, unknown base profile)."""
    import yaml

    from kling.atomic import atomic_write_bytes
    from kling.config import load_profile
    from kling.curate.sources import discover_videos
    from kling.hashing import config_hash
    from kling.paths import user_profiles_dir

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    if not discover_videos(folder):
        raise ValueError(f"no video file in {folder} (looked for .mp4, .mov, .mkv, .avi, .webm, ... in sub-folders too)")
    prof = load_profile(base or "demo")
    raw = dict(prof.raw)
    raw["source"] = {**prof.section("source"), "kind": "folder", "path": str(folder)}
    if name is None:  # one curation folder per source folder: <folder name>-<hash of its path>
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", folder.name).strip("_")[:40] or "videos"
        name = f"{stem}-{config_hash(str(folder))[:8]}"
    raw["profile"] = name
    path = user_profiles_dir() / f"{name}.yaml"
    header = f"# written by `kling curate {folder}` from profile {prof.name} ({prof.origin})\n"
    atomic_write_bytes(path, (header + yaml.safe_dump(raw, sort_keys=False)).encode())
    return path


def curation_groups(profile_path: Path) -> list[str]:
    """The groups to run: curation, plus the sync expert's training when the expert judges lip sync."""
    from kling.config import load_profile
    from kling.curate.lipsync import LipSyncConfig, resolve_judge

    from pipelines.run_order import group_order, load_definitions  # the CLI is the top layer: imported here only

    p = load_profile(profile_path)
    cfg = resolve_judge(LipSyncConfig(**p.section("lip_sync")), p.uses_demo_corpus)
    groups = [g for g in group_order(load_definitions()) if g.startswith(CURATION_PREFIX)]
    return groups + (["training"] if cfg.enabled and cfg.judge == "expert" else [])


def curate(folder: Path, profile: Optional[str] = None, name: Optional[str] = None) -> None:
    from kling.cli.demo import run_demo
    from kling.config import ProfileError

    try:
        path = folder_profile(folder, profile, name)
        groups = curation_groups(path)
    except (FileNotFoundError, ValueError, ProfileError, TypeError) as exc:  # TypeError: unknown profile keys
        typer.secho(f"kling curate: {exc}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"profile {path} (source: {Path(folder).expanduser().resolve()})")
    run_demo(str(path), groups=groups)
    _print_summary(path)
    typer.echo(f"evaluate the kept clips: kling demo --profile {path}  (or kling benchmark from-clips FOLDER OUT)")


def _print_summary(profile_path: Path) -> None:
    """What was kept, and every rejection with what was measured; who judged lip sync and why."""
    import pandas as pd

    from kling.config import load_profile
    from kling.curate.lipsync import LipSyncConfig, judge_note, resolve_judge
    from kling.curate.steps import MANIFEST_NAME
    from kling.paths import Layout

    p = load_profile(profile_path)
    manifest = Layout.default().curation(p.name) / MANIFEST_NAME
    if not manifest.exists():
        return
    df = pd.read_parquet(manifest)
    kept = df[df["kept"]]
    typer.secho(f"\nkept {len(kept)} clips ({(kept['end_s'] - kept['start_s']).sum():.1f} s) from "
                f"{df['video_id'].nunique()} videos", bold=True)
    for r in df[~df["kept"]].itertuples(index=False):
        codes = ", ".join(r.reject_reasons)
        detail = r.reject_detail or ""
        # clip rows' details are "code: measured; ..." already; a rejected video's is the step's message
        typer.echo(f"  rejected {r.clip_id}: {detail if detail.startswith(codes) else f'{codes}: {detail}'}")
    cfg = resolve_judge(LipSyncConfig(**p.section("lip_sync")), p.uses_demo_corpus)
    typer.echo(f"lip sync: {judge_note(cfg) if cfg.enabled else 'disabled in the profile'}")


def register(app: typer.Typer) -> None:
    @app.command("curate")
    def curate_cmd(folder: Path = typer.Argument(..., help="folder of your videos (any container PyAV reads)"),
                   profile: Optional[str] = typer.Option(None, help="settings to start from: profile name or YAML "
                                                                  "path (default: demo); its source is replaced"),
                   name: Optional[str] = typer.Option(None, help="profile name (default: folder name + hash)")) -> None:
        """Curate a folder of your own videos through the Dagster assets, writing in $KLING_HOME."""
        curate(folder, profile, name)
