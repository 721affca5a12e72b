"""`kling demo`'s run order comes from the definitions: groups in dependency order, each over all its keys."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.run_order import group_order, materialize_args

videos = dg.StaticPartitionsDefinition(["v1", "v2", "v3"])
grid = dg.MultiPartitionsDefinition({"benchmark": dg.StaticPartitionsDefinition(["b"]),
                                     "system": dg.DynamicPartitionsDefinition(name="systems")})


@dg.asset(group_name="src")
def source() -> None: ...


@dg.asset(deps=[source], group_name="per_video", partitions_def=videos)
def step() -> None: ...


@dg.asset(deps=[source], group_name="prepare")
def prepare() -> None: ...


@dg.asset(deps=[step], group_name="train")
def train() -> None: ...


@dg.asset(deps=[prepare, train], group_name="runs", partitions_def=grid)
def run() -> None: ...


DEFS = dg.Definitions(assets=[source, step, prepare, train, run])


def test_groups_follow_their_dependencies_depth_first():
    # after src both per_video and prepare are ready: the line per_video -> train is finished first
    assert group_order(DEFS) == ["src", "per_video", "train", "prepare", "runs"]


def test_partitioned_groups_run_over_every_key():
    assert materialize_args(DEFS, "src") == ["--select", "group:src"]
    assert materialize_args(DEFS, "per_video") == ["--select", "group:per_video", "--partition-range", "v1...v3"]
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_args(DEFS, "runs", instance) is None  # no system registered yet: nothing to run
    instance.add_dynamic_partitions("systems", ["control.b", "ours", "control.a"])
    assert materialize_args(DEFS, "runs", instance)[-1] == "b|control.b...b|control.a"  # the instance's order


def test_a_cycle_between_groups_is_named():
    @dg.asset(group_name="x")
    def a() -> None: ...

    @dg.asset(deps=[a], group_name="y")
    def b() -> None: ...

    @dg.asset(deps=[b], group_name="x")
    def c() -> None: ...

    with pytest.raises(ValueError, match="cycle"):
        group_order(dg.Definitions(assets=[a, b, c]))


def test_keys_are_read_again_after_the_runs_before(tmp_path, monkeypatch):
    """A video added to the source folder is a partition of the next run without restarting the process."""
    from pipelines.run_order import load_definitions

    src = tmp_path / "videos"
    src.mkdir()
    (src / "a.mp4").write_bytes(b"")
    profile = tmp_path / "mine.yaml"
    profile.write_text(f"profile: mine\nsource: {{kind: folder, path: {src}}}\n")
    monkeypatch.setenv("KLING_PROFILE", str(profile))
    assert materialize_args(load_definitions(fresh=True), "curation_videos")[-1] == "a...a"
    (src / "b.mp4").write_bytes(b"")
    assert materialize_args(load_definitions(fresh=True), "curation_videos")[-1] == "a...b"
