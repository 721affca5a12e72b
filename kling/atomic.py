"""Atomic file writes: readers see the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; the result should look like any new file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def write_parquet_atomic(
    table,
    path: str | Path,
    metadata: dict[str, Any] | None = None,
    *,
    schema: pa.Schema | None = None,
    row_group_size: int | None = None,
    metadata_at_end: Callable[[], dict[str, Any]] | None = None,
) -> Path:
    """Write a pandas DataFrame or pyarrow Table to Parquet atomically, with JSON key-value metadata.

    ``table`` may also be an iterable of pyarrow Tables / RecordBatches of one ``schema`` (required then): each is
    written as it comes (one row group per part, or per ``row_group_size`` rows), so a table built part by part
    is never whole in memory; no part at all gives an empty table with that schema. ``row_group_size`` bounds the
    rows per row group in every case (pyarrow buffers one row group's columns before writing them).
    ``metadata_at_end`` (parts only) is called after the last part, for metadata known only then (counts of a
    streamed table); it goes into the file's footer, which read_parquet_metadata reads.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    elif not isinstance(table, pa.Table) and schema is None:  # a DataFrame; parts come with their schema
        table = pa.Table.from_pandas(table, preserve_index=False)
    if isinstance(table, pa.Table):
        if metadata_at_end is not None:
            raise ValueError("metadata_at_end is for a table written part by part")
        if metadata:
            table = table.replace_schema_metadata(_merged_metadata(table.schema, metadata))
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, row_group_size=row_group_size)
        return Path(path)
    if metadata:
        schema = schema.with_metadata(_merged_metadata(schema, metadata))
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in table:
                if isinstance(part, pa.RecordBatch):
                    part = pa.Table.from_batches([part])
                writer.write_table(part, row_group_size=row_group_size)  # raises on a part of another schema
            if metadata_at_end is not None:
                writer.add_key_value_metadata(_merged_metadata(pa.schema([]), metadata_at_end()))
    return Path(path)


def _merged_metadata(schema: pa.Schema, metadata: dict[str, Any] | None) -> dict:
    merged = dict(schema.metadata or {})
    for k, v in (metadata or {}).items():
        merged[f"kling.{k}".encode()] = json.dumps(v, sort_keys=True, default=str).encode()
    return merged


def read_parquet_metadata(path: str | Path) -> dict[str, Any]:
    """The `kling.*` metadata written by write_parquet_atomic (the footer's key-values: the schema's metadata
    and any written at the end)."""
    meta = pq.read_metadata(path).metadata or {}
    out = {}
    for k, v in meta.items():
        key = k.decode()
        if key.startswith("kling."):
            out[key[len("kling."):]] = json.loads(v.decode())
    return out
