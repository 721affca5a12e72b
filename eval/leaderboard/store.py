"""The leaderboard store: one Parquet file per run (system x benchmark), written atomically, and a DuckDB
view over all of them.

Layout: `<root>/<benchmark>/<system>/<run_id>.parquet` (names made path-safe). Files are listed in Python
(hidden temp files of in-flight writes are skipped) and read with `union_by_name`, so runs written with
extra columns (aggregates' CI columns) sit in one view with plain runs.

Views: `rows` (every row of every run), `runs` (one row per run), `latest_rows` (only the newest run of
each system on each benchmark: what the leaderboard shows).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from kling.atomic import read_parquet_metadata, write_parquet_atomic
from kling.paths import Layout
from eval.leaderboard.schema import COLUMNS, SCHEMA

EXTRA_TYPES = {"ci_low": pa.float64(), "ci_high": pa.float64(), "n_cases": pa.int64(), "n_missing": pa.int64(),
               "missing_cases": pa.string()}


def default_root() -> Path:
    """The run store of the pipeline (kling.paths.Layout.store): <data>/leaderboard."""
    return Layout.default().store


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(name)).strip(".") or "_"


def run_path(root: str | Path, benchmark: str, system: str, run_id: str) -> Path:
    return Path(root) / _safe(benchmark) / _safe(system) / f"{_safe(run_id)}.parquet"


def to_table(rows: Any) -> pa.Table:
    """Rows (Table, DataFrame or list of dicts) cast to SCHEMA plus any known extra columns."""
    if isinstance(rows, pa.Table):
        df = rows.to_pandas()
    elif isinstance(rows, pd.DataFrame):
        df = rows
    else:
        df = pd.DataFrame(list(rows))
    missing = [c for c in COLUMNS if c not in df]
    if missing:
        raise ValueError(f"leaderboard rows lack columns {missing} (use schema.complete_rows)")
    fields = list(SCHEMA) + [pa.field(c, t) for c, t in EXTRA_TYPES.items() if c in df]
    df = df[[f.name for f in fields]].astype(object).where(df[[f.name for f in fields]].notna(), None)
    return pa.Table.from_pandas(df, schema=pa.schema(fields), preserve_index=False)


def write_run(rows: Any, root: str | Path | None = None, metadata: dict[str, Any] | None = None) -> Path:
    """Write one run's rows (a single run_id, system and benchmark) atomically; returns the file."""
    table = to_table(rows)
    if table.num_rows == 0:
        raise ValueError("no rows to write")
    ids = {c: sorted(set(table.column(c).to_pylist())) for c in ("run_id", "system", "benchmark")}
    many = {c: v for c, v in ids.items() if len(v) != 1}
    if many:
        raise ValueError(f"one run file holds one run, system and benchmark; got {many}")
    path = run_path(root or default_root(), ids["benchmark"][0], ids["system"][0], ids["run_id"][0])
    meta = {"run_id": ids["run_id"][0], "system": ids["system"][0], "benchmark": ids["benchmark"][0]}
    return write_parquet_atomic(table, path, meta | (metadata or {}))


def write_runs(rows: Any, root: str | Path | None = None, metadata: dict[str, Any] | None = None) -> list[Path]:
    """Split rows by (run, system, benchmark) and write each part with write_run."""
    df = to_table(rows).to_pandas()
    return [write_run(g, root, metadata) for _, g in df.groupby(["run_id", "system", "benchmark"], sort=True)]


def run_files(root: str | Path | None = None) -> list[Path]:
    root = Path(root or default_root())
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.parquet") if not any(part.startswith(".") for part in p.relative_to(root).parts))


def run_metadata(path: str | Path) -> dict[str, Any]:
    return read_parquet_metadata(path)


def _empty_select() -> str:
    cols = ", ".join(f"CAST(NULL AS {_sql_type(f.type)}) AS \"{f.name}\"" for f in SCHEMA)
    return f"SELECT {cols} WHERE false"


def _sql_type(t: pa.DataType) -> str:
    return {pa.string(): "VARCHAR", pa.float64(): "DOUBLE", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN"}[t]


def connect(root: str | Path | None = None, files: list[Path] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views `rows`, `runs` and `latest_rows`."""
    files = run_files(root) if files is None else files
    con = duckdb.connect(":memory:")
    if files:
        listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        con.execute(f"CREATE VIEW rows AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
    else:
        con.execute(f"CREATE VIEW rows AS {_empty_select()}")
    con.execute("""
        CREATE VIEW runs AS
        SELECT run_id, system, benchmark, max(created_at) AS created_at, any_value(git_sha) AS git_sha,
               any_value(checkpoint) AS checkpoint, any_value(config_hash) AS config_hash, count(*) AS n_rows
        FROM rows GROUP BY run_id, system, benchmark""")
    con.execute("""
        CREATE VIEW latest_rows AS
        SELECT r.* FROM rows r JOIN (
            SELECT system, benchmark, arg_max(run_id, coalesce(created_at, '') || run_id) AS run_id
            FROM runs GROUP BY system, benchmark) l
        USING (system, benchmark, run_id)""")
    return con


def load_rows(root: str | Path | None = None, latest: bool = True, benchmark: str | None = None,
              metric: str | None = None, files: list[Path] | None = None) -> pd.DataFrame:
    """Rows of the store as a DataFrame (latest run per system and benchmark by default)."""
    con = connect(root, files)
    where, params = [], []
    for col, val in (("benchmark", benchmark), ("metric", metric)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    sql = f"SELECT * FROM {'latest_rows' if latest else 'rows'}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY benchmark, system, metric, clip_id, \"window\""
    return con.execute(sql, params).df()


def read_any(path: str | Path, latest: bool = True) -> pd.DataFrame:
    """Rows from a single Parquet file or a store folder."""
    path = Path(path)
    if path.is_dir():
        return load_rows(path, latest=latest)
    if not path.is_file():
        raise FileNotFoundError(f"no leaderboard Parquet at {path}")
    return load_rows(files=[path], latest=latest)
