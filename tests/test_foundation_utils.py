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
