"""Atomic per-run Parquet files and the DuckDB views over them."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eval.leaderboard import store
from eval.leaderboard.aggregate import aggregate
from eval.leaderboard.schema import SCHEMA
from eval.leaderboard.synthetic import system_rows

CASES = ["c1", "c2", "c3"]


def test_write_run_layout_schema_and_metadata(tmp_path):
    t = system_rows("ours/v2", {"sync_c": 7.0}, CASES, run_id="r1")
    p = store.write_run(t, tmp_path, {"note": "x"})
    assert p == tmp_path / "demo" / "ours_v2" / "r1.parquet"
    assert pq.read_schema(p).remove_metadata().equals(SCHEMA)
    assert store.run_metadata(p)["system"] == "ours/v2" and store.run_metadata(p)["note"] == "x"
    assert not [q for q in p.parent.iterdir() if q.name.startswith(".")]  # no temp file left


def test_write_run_rejects_mixed_runs_and_bad_rows(tmp_path):
    mixed = pa.concat_tables([system_rows("a", {"sync_c": 1.0}, CASES), system_rows("b", {"sync_c": 1.0}, CASES)])
    with pytest.raises(ValueError, match="one run"):
        store.write_run(mixed, tmp_path)
    assert len(store.write_runs(mixed, tmp_path)) == 2
    with pytest.raises(ValueError, match="lack columns"):
        store.write_run([{"metric": "x"}], tmp_path)


def test_views_over_all_runs_and_latest(tmp_path):
    store.write_run(system_rows("a", {"sync_c": 5.0}, CASES, run_id="old", created_at="2026-01-01T00:00:00+00:00", noise=0), tmp_path)
    store.write_run(system_rows("a", {"sync_c": 6.0}, CASES, run_id="new", created_at="2026-02-01T00:00:00+00:00", noise=0), tmp_path)
    store.write_run(system_rows("b", {"sync_c": 4.0}, CASES, benchmark="other", noise=0), tmp_path)
    # an in-flight write's hidden temp file is never read
    (tmp_path / "demo" / "a" / ".new.parquet.tmp.parquet").write_bytes(b"partial")
    con = store.connect(tmp_path)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 3
    assert con.execute("SELECT count(*) FROM rows").fetchone()[0] == 9
    latest = store.load_rows(tmp_path)
    assert set(latest["run_id"]) == {"new", "run-b"} and set(latest[latest.system == "a"]["value"]) == {6.0}
    assert len(store.load_rows(tmp_path, latest=False, benchmark="demo")) == 6
    assert store.load_rows(tmp_path, metric="nope").empty


def test_empty_store_and_extra_columns(tmp_path):
    assert store.load_rows(tmp_path / "none").empty
    agg = aggregate(system_rows("a", {"sync_c": 5.0}, CASES))
    p = store.write_run(agg, tmp_path)
    store.write_run(system_rows("b", {"sync_c": 5.0}, CASES), tmp_path)
    df = store.load_rows(tmp_path)
    assert "ci_low" in df and df[df.system == "a"]["ci_low"].notna().all() and df[df.system == "b"]["ci_low"].isna().all()
    assert len(store.read_any(p)) == 1
    with pytest.raises(FileNotFoundError):
        store.read_any(tmp_path / "nope.parquet")
