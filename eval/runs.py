"""Evaluation runs from a profile (no Dagster here): benchmarks prepared into the data layout
(kling.paths.Layout), settings, the fingerprint that lets an unchanged run be skipped, one run of a system
(`run_system`), and the leaderboard and dashboard written from the run store."""

from __future__ import annotations

import dataclasses
import time
import logging
from pathlib import Path
from typing import Any, Callable

from eval.benchmarks import SPEC_FILE, Benchmark, load_benchmark
from eval.suite import EvalSettings
from kling.config import Profile
from kling.paths import Layout

log = logging.getLogger(__name__)


def latest_assertions(layout: Layout):
    """Failed assertions of the latest run of every (benchmark, system), with those two columns, or None."""
    import pandas as pd

    from eval.leaderboard.store import run_files, run_metadata

    latest: dict[tuple, Path] = {}
    for f in run_files(layout.store):
        m = run_metadata(f)
        key = (m.get("benchmark"), m.get("system"))
        if key not in latest or f.stat().st_mtime_ns > latest[key].stat().st_mtime_ns:
            latest[key] = f
    parts = []
    for (bench, system), f in sorted(latest.items()):
        a = layout.assertions_path(f)
        if a.exists():
            parts.append(pd.read_parquet(a).assign(benchmark=bench, system=system))
    return pd.concat(parts, ignore_index=True) if parts else None


def _benchmark_entries(profile: Profile) -> list:
    # Without an explicit list, the demo corpus profile evaluates the demo benchmark; a folder of the
    # user's videos evaluates nothing until benchmarks are named.
    default = ["demo"] if profile.uses_demo_corpus else []
    entries = list(profile.section("eval").get("benchmarks", default))
    if profile.uses_demo_corpus:
        return entries
    # A folder source has no demo corpus: its `demo` entry (a copied demo profile) is the benchmark built from
    # the folder's clips as `kling benchmark from-clips` builds it, under its own name so that it never mixes
    # with the demo's benchmark, systems or leaderboard rows.
    # The demo recipe's long cases chain demo corpus clips: a folder has none to chain.
    dropped = [e for e in entries if isinstance(e, dict) and "demo_long_classes" in e]
    if dropped:
        log.info("benchmarks %s left out: their long cases chain demo corpus clips, and the profile's source is a "
                 "folder", [e.get("name") for e in dropped])
    return [_folder_entry(profile) if e == "demo" else e for e in entries if e not in dropped]


def _folder_entry(profile: Profile) -> dict:
    name = f"clips_{profile.name}"
    return {"name": name, "spec": str(Layout.default().benchmark_dir(name) / SPEC_FILE),
            "from_clips": str(profile.source_dir())}


def benchmark_names(profile: Profile) -> list[str]:
    """Benchmarks of the profile: `demo` (built from the demo corpus) and/or {name, spec} entries."""
    return [str(b["name"] if isinstance(b, dict) else b) for b in _benchmark_entries(profile)]


def _entries(profile: Profile) -> dict[str, object]:
    return {str(b["name"] if isinstance(b, dict) else b): b for b in _benchmark_entries(profile)}


def prepare_benchmark(profile: Profile, name: str, layout: Layout) -> Benchmark:
    """Build the demo benchmark from the demo corpus into the layout, or load a spec the profile names
    (`benchmarks: [{name: hdtf, spec: /path/to/benchmark.yaml}]`), checking that its files exist."""
    entry = _entries(profile)[name]
    if isinstance(entry, dict) and entry.get("from_clips"):
        return _clips_benchmark(name, Path(entry["from_clips"]), layout)
    if isinstance(entry, dict) and "demo_long_classes" in entry:
        return _demo_long_benchmark(profile, name, list(entry["demo_long_classes"]), layout)
    if isinstance(entry, dict):
        return load_benchmark(Path(entry["spec"]).expanduser(), check_files=True)
    if name != "demo":
        raise ValueError(f"benchmark {name!r}: give it as {{name: {name}, spec: PATH}} in the profile's eval.benchmarks")
    from eval.benchmark_recipes import build_demo_benchmark
    from kling.demo import CorpusManifest

    manifest = CorpusManifest.load(profile.source_dir())
    long_classes = profile.section("eval").get("demo_long_classes")
    return build_demo_benchmark(manifest, layout.benchmark_dir(name), long_classes=long_classes)


def _demo_long_benchmark(profile: Profile, name: str, classes: list[str], layout: Layout) -> Benchmark:
    """The demo recipe's long cases of `classes` alone (`benchmarks: [demo, {name: demo_1min, demo_long_classes:
    [1min]}]`): their aggregates stay apart from the short cases', as a paper reports its long-video table apart."""
    from eval.benchmark_recipes import build_demo_benchmark
    from kling.demo import CorpusManifest

    manifest = CorpusManifest.load(profile.source_dir())
    return build_demo_benchmark(manifest, layout.benchmark_dir(name), long_classes=classes, short=False, name=name)


def _clips_benchmark(name: str, folder: Path, layout: Layout) -> Benchmark:
    """The benchmark of a folder source's `demo` entry: one case per clip of the folder (eval.benchmark_recipes
    .build_clip_benchmark, as `kling benchmark from-clips`): every video of the folder (its top level), kept
    by curation or not; clips it cannot use are logged with the reason and listed in the spec's recipe."""
    import logging

    from eval.benchmark_recipes import build_clip_benchmark

    log = logging.getLogger(__name__)
    log.info("benchmark %s: the profile's source is the folder %s, not the demo corpus: its `demo` entry is built "
             "from that folder's clips (as `kling benchmark from-clips`)", name, folder)
    return build_clip_benchmark(folder, layout.benchmark_dir(name), name=name).benchmark  # logs each skipped clip


def load_prepared(profile: Profile, name: str, layout: Layout) -> Benchmark:
    """A benchmark prepared earlier by prepare_benchmark (no rebuilding)."""
    entry = _entries(profile)[name]
    spec = (Path(entry["spec"]).expanduser() if isinstance(entry, dict) and "spec" in entry
            else layout.benchmark_dir(name) / SPEC_FILE)
    if not spec.exists():
        raise FileNotFoundError(f"benchmark {name} is not prepared ({spec} missing): materialize eval/benchmarks first")
    return load_benchmark(spec, check_files=True)


def system_names(layout: Layout, benchmark: str) -> list[str]:
    d = layout.systems_dir(benchmark)
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")) if d.is_dir() else []


def eval_settings(profile: Profile, layout: Layout) -> EvalSettings:
    cfg = profile.section("eval")
    fields = {f.name for f in dataclasses.fields(EvalSettings)}
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k in fields}
    if "sync_expert_dir" not in kw:
        from kling.perception.sync.expert import latest_checkpoint_dir

        latest = latest_checkpoint_dir(layout.sync_expert)
        kw["sync_expert_dir"] = str(latest) if latest else None
    backbones = tuple(kw.get("sync_backbones", EvalSettings.sync_backbones))
    if "expert" in backbones and not expert_can_judge(profile):
        # the lip-sync filter's own rule: an expert trained on the synthetic demo corpus cannot judge the user's
        # real footage, so its numbers would only fail their controls (said once, in the log)
        from kling.curate.lipsync import LipSyncConfig, judge_note, resolve_judge

        log.warning("sync backbone 'expert' left out of evaluation: %s",
                    judge_note(resolve_judge(LipSyncConfig(**profile.section("lip_sync")), False)))
        kw["sync_backbones"] = tuple(b for b in backbones if b != "expert")
    return EvalSettings(**kw)


def expert_can_judge(profile: Profile) -> bool:
    """Whether the self-trained sync expert may score this profile's videos: the lip-sync filter's decision
    (`lip_sync.judge`, auto: on the demo corpus only)."""
    from kling.curate.lipsync import LipSyncConfig, resolve_judge

    return resolve_judge(LipSyncConfig(**profile.section("lip_sync")), profile.uses_demo_corpus).judge == "expert"


RUN_FINGERPRINT_VERSION = 2  # bump when evaluation code changes its numbers: every run is then redone
# 2: PSNR, SSIM (pixels-v3) and LMD (lmd-v2) against the ground truth joined every run


def run_fingerprint(benchmark: Benchmark, system_dir: Path, settings: EvalSettings,
                    storylines: dict[str, dict] | None = None) -> str:
    """Everything a run's rows depend on: the benchmark spec, the system's files (name, size, mtime), the
    settings, the weight files they use and the director's storylines of the cases. An unchanged fingerprint
    means the stored run still holds."""
    from kling.hashing import config_hash, file_sha256
    from kling.weights import sha256_of

    # Descriptors are rewritten with the same content on every run: their content counts, not their mtime.
    files = sorted((p.name, file_sha256(p) if p.suffix in {".yaml", ".yml", ".json"} else (p.stat().st_size, p.stat().st_mtime_ns))
                   for p in Path(system_dir).iterdir() if p.is_file())
    expert = Path(settings.sync_expert_dir or "") / "expert.pt"
    return config_hash({
        "version": RUN_FINGERPRINT_VERSION, "spec": benchmark.spec_hash(), "files": files, "settings": settings,
        "expert": sha256_of(expert) if settings.sync_expert_dir and expert.is_file() else None,
        "storylines": config_hash(storylines or {}),
    })


def stored_run(layout: Layout, benchmark: str, system: str, fingerprint: str) -> Path | None:
    """The latest stored run of (benchmark, system) if it was made from the same inputs."""
    from eval.leaderboard.store import run_files, run_metadata

    mine = [p for p in run_files(layout.store) if (run_metadata(p).get("benchmark"), run_metadata(p).get("system")) == (benchmark, system)]
    latest = max(mine, key=lambda p: p.stat().st_mtime_ns, default=None)
    return latest if latest is not None and run_metadata(latest).get("fingerprint") == fingerprint else None


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What run_system did for one (benchmark, system): "written" (a new run file), "unchanged" (the stored
    run `path` was made from the same inputs) or "no_system" (no such system folder for this benchmark)."""

    benchmark: str
    system: str
    status: str
    path: Path | None = None
    rows: int = 0
    unavailable: int = 0
    seconds: float = 0.0

    def summary(self) -> Any:
        """The run as the eval/runs asset reports it in its metadata."""
        if self.status == "no_system":
            return "no such system for this benchmark"
        if self.status == "unchanged":
            return {"unchanged": str(self.path)}
        return {"rows": self.rows, "unavailable": self.unavailable, "seconds": self.seconds, "file": str(self.path)}


def eval_workers(profile: Profile) -> int:
    """Processes an evaluation run spreads its cases over (`eval.workers`; default 1). Not in the run's settings
    or fingerprint: any count gives the same values (eval.suite.evaluate_system says to which bit)."""
    return max(1, int(profile.section("eval").get("workers") or 1))


def run_system(profile: Profile, layout: Layout, benchmark: str, system: str, settings: EvalSettings | None = None,
               progress: Callable[[str], None] | None = None) -> RunOutcome:
    """Evaluate `system` on `benchmark` (every metric, every configured backbone, per case) and write the run
    to the store with its failed assertions beside it; a run whose fingerprint matches the latest stored
    run of the pair is not redone. `settings` defaults to eval_settings(profile, layout); the cases are spread
    over eval_workers(profile) processes."""
    from eval.adherence.score import write_assertions_parquet
    from eval.leaderboard.schema import RunContext
    from eval.leaderboard.store import write_run
    from eval.suite import evaluate_system
    from eval.systems import load_system
    from kling.director.batch import read_storylines

    if system not in system_names(layout, benchmark):
        return RunOutcome(benchmark, system, "no_system")
    settings = settings if settings is not None else eval_settings(profile, layout)
    start = time.perf_counter()
    bench = load_prepared(profile, benchmark, layout)
    system_dir = layout.systems_dir(benchmark) / system
    storylines = read_storylines(layout.storylines_dir(benchmark))  # the director/storylines asset's
    fingerprint = run_fingerprint(bench, system_dir, settings, storylines)
    previous = stored_run(layout, benchmark, system, fingerprint)
    if previous is not None:
        return RunOutcome(benchmark, system, "unchanged", previous)
    ctx = RunContext.new(system, benchmark, settings.hash, checkpoint=settings.sync_expert_dir or "")
    result = evaluate_system(bench, load_system(system_dir), settings, ctx, progress=progress, storylines=storylines,
                             workers=eval_workers(profile))
    path = write_run(result.rows, layout.store, {"settings": settings, "spec_hash": bench.spec_hash(), "fingerprint": fingerprint})
    write_assertions_parquet(result.adherence, layout.assertions_path(path),
                             metadata={"run_id": ctx.run_id, "system": system, "benchmark": benchmark})
    status = result.rows.column("status").to_pylist()
    return RunOutcome(benchmark, system, "written", path, len(status), status.count("unavailable"),
                      round(time.perf_counter() - start, 1))


LEADERBOARD_FILE = "leaderboard.parquet"  # under layout.reports
DASHBOARD_FILE = "dashboard.html"


@dataclasses.dataclass(frozen=True)
class LeaderboardOutcome:
    path: Path
    rows: Any  # the latest rows per (benchmark, system), a DataFrame
    table: Any  # the ranked aggregates (eval.leaderboard.aggregate.rank_table)
    outcomes: list  # every control outcome


def write_leaderboard(layout: Layout) -> LeaderboardOutcome:
    """The ranked leaderboard of the latest run of every (benchmark, system), written to the reports."""
    from eval.leaderboard.aggregate import rank_table
    from eval.leaderboard.store import load_rows
    from kling.atomic import write_parquet_atomic

    rows = load_rows(layout.store, latest=True)
    table, outcomes = rank_table(rows)
    path = write_parquet_atomic(table, layout.reports / LEADERBOARD_FILE, {"runs": sorted(rows["run_id"].unique())})
    return LeaderboardOutcome(path, rows, table, outcomes)


def write_dashboard(layout: Layout) -> Path:
    """The static HTML dashboard over the run store, with the latest runs' failed assertions and the gallery
    of the layout's system folders."""
    from eval.dashboard import build_dashboard

    return build_dashboard(layout.store, layout.reports / DASHBOARD_FILE, assertions=latest_assertions(layout),
                           layout=layout)
