"""Hashing, atomic writes, profiles and source discovery."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from kling.atomic import atomic_path, read_parquet_metadata, write_parquet_atomic
from kling.config import load_profile
from kling.curate.sources import discover_videos
from kling.hashing import config_hash


def test_config_hash_is_order_independent_and_sensitive():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})

    @dataclasses.dataclass
    class C:
        x: float = 1.0

    assert config_hash(C()) == config_hash({"x": 1.0})


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_parquet_roundtrip_with_metadata(tmp_path):
    df = pd.DataFrame({"a": [1, 2]})
    path = write_parquet_atomic(df, tmp_path / "t.parquet", {"config_hash": "abc", "counts": {"n": 2}})
    assert pd.read_parquet(path)["a"].tolist() == [1, 2]
    assert read_parquet_metadata(path) == {"config_hash": "abc", "counts": {"n": 2}}


def test_parquet_written_part_by_part(tmp_path):
    """An iterable of parts is written one row group per part (or per row_group_size rows), never joined first;
    the table read back is the whole one, with the metadata; no parts gives the schema with no rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("frame", pa.int32()), ("xy", pa.list_(pa.float32(), 2))])
    whole = pa.table({"frame": pa.array(range(10), pa.int32()),
                      "xy": pa.array([[i, -i] for i in range(10)], schema.field("xy").type)}, schema=schema)
    made = []

    def parts():
        for i in range(0, 10, 4):
            made.append(i)
            yield whole.slice(i, 4) if i else whole.slice(i, 4).to_batches()[0]  # Tables or RecordBatches

    path = write_parquet_atomic(parts(), tmp_path / "p.parquet", {"n": 10}, schema=schema)
    assert made == [0, 4, 8] and pq.ParquetFile(path).metadata.num_row_groups == 3
    assert pq.read_table(path).equals(whole) and read_parquet_metadata(path) == {"n": 10}
    small = write_parquet_atomic(iter([whole]), tmp_path / "s.parquet", schema=schema, row_group_size=3)
    assert pq.ParquetFile(small).metadata.num_row_groups == 4 and pq.read_table(small).equals(whole)
    table_path = write_parquet_atomic(whole, tmp_path / "t.parquet", row_group_size=5)
    assert pq.ParquetFile(table_path).metadata.num_row_groups == 2
    empty = write_parquet_atomic(iter([]), tmp_path / "e.parquet", schema=schema)
    assert pq.read_table(empty).num_rows == 0 and pq.read_schema(empty).equals(schema)
    # a part of another schema fails the write, and the file already there stays as it was
    with pytest.raises(ValueError):
        write_parquet_atomic(iter([whole, pa.table({"x": [1]})]), path, schema=schema)
    assert pq.read_table(path).equals(whole) and sorted(p.name for p in tmp_path.iterdir()) == [
        "e.parquet", "p.parquet", "s.parquet", "t.parquet"]


def test_profiles_load_and_user_folder(tmp_path, monkeypatch):
    demo = load_profile("demo")
    assert demo.name == "demo" and demo.source_dir().name == "demo_corpus"
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"profile: mine\nsource: {{kind: folder, path: {tmp_path}}}\n")
    monkeypatch.setenv("KLING_PROFILE", str(mine))
    assert load_profile().source_dir() == tmp_path
    with pytest.raises(FileNotFoundError):
        load_profile("nope")


def test_discover_videos_ids_are_unique_and_safe(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for p in ["a/clip 1.mp4", "b/clip 1.mp4", "x.MOV", "notes.txt", ".hidden.mp4"]:
        (tmp_path / p).write_bytes(b"")
    refs = discover_videos(tmp_path)
    ids = [r.video_id for r in refs]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert all(set(i) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") for i in ids)
    assert "x" in ids
    assert discover_videos(tmp_path) == refs  # stable
