"""Where the project keeps everything it writes: the one owner of the $KLING_HOME layout.

    $KLING_HOME/                       ($KLING_HOME, else ~/.cache/kling)
      weights/                         standard weight files ($KLING_WEIGHTS overrides)
      dagster_home/                    Dagster's instance ($DAGSTER_HOME overrides)
      cache/features/                  cached metric features
      profiles/                        profiles written by `kling curate FOLDER`
      data/
        demo_corpus/                   the generated demo corpus (source of the demo profile)
        curation/<profile>/            per-step outputs and the curated manifest
        training/<model>/              checkpoints, one folder per training recipe, latest.json
        benchmarks/<benchmark>/        benchmark spec + reference images and audio
        systems/<benchmark>/<system>/  videos named by case id + system.yaml (controls included)
        leaderboard/                   the run store: one Parquet per evaluation run
        assertions/                    failed adherence assertions beside each run (mirrors leaderboard/)
        reports/                       leaderboard.parquet, dashboard.html

Code in the checkout (datasets/ recipes, reports/baselines/) is found through `repo_root()`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path


def kling_home() -> Path:
    """Root of everything the pipeline writes: $KLING_HOME, else ~/.cache/kling."""
    return Path(os.environ.get("KLING_HOME") or Path.home() / ".cache" / "kling").expanduser()


def data_dir() -> Path:
    return kling_home() / "data"


def weights_dir() -> Path:
    """Standard weight files: $KLING_WEIGHTS, else <kling_home>/weights."""
    env = os.environ.get("KLING_WEIGHTS")
    return Path(env).expanduser() if env else kling_home() / "weights"


def dagster_home() -> Path:
    env = os.environ.get("DAGSTER_HOME")
    return Path(env).expanduser() if env else kling_home() / "dagster_home"


def user_profiles_dir() -> Path:
    """Profiles written for the user (`kling curate FOLDER` copies a profile with the folder as its source)."""
    return kling_home() / "profiles"


def feature_cache_dir() -> Path:
    return kling_home() / "cache" / "features"


def repo_root() -> Path:
    """The checkout (for datasets/ recipes and reports/ baselines shipped with the code)."""
    return Path(__file__).resolve().parents[1]


def sidecar(output: str | Path) -> Path:
    """The JSON beside a generated output (`clip.mp4` -> `clip.json`): how it was made (checkpoint, seed,
    configuration, input hashes, where its independently generated pieces meet)."""
    return Path(output).with_suffix(".json")


def baselines_dir() -> Path:
    """Tracked baselines and tolerances of the regression gate."""
    return repo_root() / "reports" / "baselines"


@dataclasses.dataclass(frozen=True)
class Layout:
    """The data folders under one root (default: data_dir()); tests and users may point it elsewhere."""

    root: Path

    @staticmethod
    def default() -> "Layout":
        return Layout(data_dir())

    @property
    def demo_corpus(self) -> Path:
        return self.root / "demo_corpus"

    def curation(self, profile: str) -> Path:
        return self.root / "curation" / profile

    def training(self, model: str) -> Path:
        return self.root / "training" / model

    @property
    def sync_expert(self) -> Path:
        return self.training("sync_expert")

    def benchmark_dir(self, name: str) -> Path:
        return self.root / "benchmarks" / name

    def storylines_dir(self, benchmark: str) -> Path:
        """The director's storyline of every case of `benchmark` (kling.director.batch)."""
        return self.benchmark_dir(benchmark) / "storylines"

    def systems_dir(self, benchmark: str) -> Path:
        return self.root / "systems" / benchmark

    @property
    def store(self) -> Path:
        return self.root / "leaderboard"

    def assertions_path(self, run_file: Path) -> Path:
        """Failed prompt-adherence assertions of a run, kept beside it (outside the run store's glob)."""
        return self.root / "assertions" / Path(run_file).relative_to(self.store)

    llm_cache = property(lambda self: self.root / "llm_cache", doc="validated LLM replies (kling.llm.cache)")

    @property
    def reports(self) -> Path:
        return self.root / "reports"
