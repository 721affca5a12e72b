"""eval.runs.run_system: one (benchmark, system) run; the write / skip path runs end to end in the Dagster
eval/runs asset (tests/pipelines) and kling demo; here, what it reports without evaluating."""

from __future__ import annotations

from eval.runs import RunOutcome, run_system
from kling.config import load_profile
from kling.paths import Layout


def test_a_system_without_a_folder_is_reported_not_run(tmp_path):
    out = run_system(load_profile("demo"), Layout(tmp_path), "demo", "nobody")
    assert out == RunOutcome("demo", "nobody", "no_system")
    assert out.summary() == "no such system for this benchmark"


def test_summaries_keep_the_asset_metadata_shape(tmp_path):
    p = tmp_path / "r.parquet"
    assert RunOutcome("demo", "s", "unchanged", p).summary() == {"unchanged": str(p)}
    written = RunOutcome("demo", "s", "written", p, rows=10, unavailable=2, seconds=1.5).summary()
    assert written == {"rows": 10, "unavailable": 2, "seconds": 1.5, "file": str(p)}
