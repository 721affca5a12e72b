"""Evaluation runs from a profile (no Dagster here): benchmarks prepared into the data layout
(kling.paths.Layout), settings, and the fingerprint that lets an unchanged run be skipped."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from eval.benchmarks import Benchmark, load_benchmark
from eval.suite import EvalSettings
from kling.config import Profile
from kling.paths import Layout

SPEC_NAME = "benchmark.yaml"


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
    return list(profile.section("eval").get("benchmarks", default))


def benchmark_names(profile: Profile) -> list[str]:
    """Benchmarks of the profile: `demo` (built from the demo corpus) and/or {name, spec} entries."""
    return [str(b["name"] if isinstance(b, dict) else b) for b in _benchmark_entries(profile)]


def _entries(profile: Profile) -> dict[str, object]:
    return {str(b["name"] if isinstance(b, dict) else b): b for b in _benchmark_entries(profile)}


def prepare_benchmark(profile: Profile, name: str, layout: Layout) -> Benchmark:
    """Build the demo benchmark from the demo corpus into the layout, or load a spec the profile names
    (`benchmarks: [{name: hdtf, spec: /path/to/benchmark.yaml}]`), checking that its files exist."""
    entry = _entries(profile)[name]
    if isinstance(entry, dict):
        return load_benchmark(Path(entry["spec"]).expanduser(), check_files=True)
    if name != "demo":
        raise ValueError(f"benchmark {name!r}: give it as {{name: {name}, spec: PATH}} in the profile's eval.benchmarks")
    from eval.benchmark_recipes import build_demo_benchmark
    from kling.demo import CorpusManifest

    manifest = CorpusManifest.load(profile.source_dir())
    long_classes = profile.section("eval").get("demo_long_classes")
    return build_demo_benchmark(manifest, layout.benchmark_dir(name), long_classes=long_classes)


def load_prepared(profile: Profile, name: str, layout: Layout) -> Benchmark:
    """A benchmark prepared earlier by prepare_benchmark (no rebuilding)."""
    entry = _entries(profile)[name]
    spec = Path(entry["spec"]).expanduser() if isinstance(entry, dict) else layout.benchmark_dir(name) / SPEC_NAME
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
    return EvalSettings(**kw)


RUN_FINGERPRINT_VERSION = 1  # bump when evaluation code changes its numbers: every run is then redone


def run_fingerprint(benchmark: Benchmark, system_dir: Path, settings: EvalSettings) -> str:
    """Everything a run's rows depend on: the benchmark spec, the system's files (name, size, mtime), the
    settings and the weight files they use. An unchanged fingerprint means the stored run still holds."""
    from kling.hashing import config_hash, file_sha256
    from kling.weights import sha256_of

    # Descriptors are rewritten with the same content on every run: their content counts, not their mtime.
    files = sorted((p.name, file_sha256(p) if p.suffix in {".yaml", ".yml", ".json"} else (p.stat().st_size, p.stat().st_mtime_ns))
                   for p in Path(system_dir).iterdir() if p.is_file())
    expert = Path(settings.sync_expert_dir or "") / "expert.pt"
    return config_hash({
        "version": RUN_FINGERPRINT_VERSION, "spec": benchmark.spec_hash(), "files": files, "settings": settings,
        "expert": sha256_of(expert) if settings.sync_expert_dir and expert.is_file() else None,
    })


def stored_run(layout: Layout, benchmark: str, system: str, fingerprint: str) -> Path | None:
    """The latest stored run of (benchmark, system) if it was made from the same inputs."""
    from eval.leaderboard.store import run_files, run_metadata

    mine = [p for p in run_files(layout.store) if (run_metadata(p).get("benchmark"), run_metadata(p).get("system")) == (benchmark, system)]
    latest = max(mine, key=lambda p: p.stat().st_mtime_ns, default=None)
    return latest if latest is not None and run_metadata(latest).get("fingerprint") == fingerprint else None
