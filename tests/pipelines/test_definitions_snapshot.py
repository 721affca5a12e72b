"""The Dagster graph as committed: every asset key, group, partitions definition, check and dependency edge,
and the run order `kling demo` derives from them, compared with definitions_snapshot.json.

A change to the graph fails here with a diff. When the change is meant (a new asset, group or check),
regenerate the snapshot and commit it with the change:

    KLING_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest -q tests/pipelines/test_definitions_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import dagster as dg

from pipelines.run_order import group_order, load_definitions

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")
UPDATE_ENV = "KLING_UPDATE_SNAPSHOTS"


def describe_partitions(p: dg.PartitionsDefinition | None) -> dict | None:
    """The partitions definition without anything read from the machine (static keys come from folders)."""
    if p is None:
        return None
    out: dict = {"type": type(p).__name__}
    if isinstance(p, dg.MultiPartitionsDefinition):
        out["dimensions"] = {d.name: describe_partitions(d.partitions_def) for d in p.partitions_defs}
    elif isinstance(p, dg.DynamicPartitionsDefinition):
        out["name"] = p.name
    elif isinstance(p, dg.TimeWindowPartitionsDefinition):
        out |= {"cron_schedule": p.cron_schedule, "fmt": p.fmt, "timezone": p.timezone}
    return out


def describe_definitions(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    nodes = sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string())
    assets = {
        n.key.to_user_string(): {
            "group": n.group_name,
            "partitions": describe_partitions(n.partitions_def),
            "deps": sorted(p.to_user_string() for p in n.parent_keys),
        }
        for n in nodes
    }
    checks = sorted(
        ({"asset": k.asset_key.to_user_string(), "name": k.name, "blocking": bool(graph.get_check_spec(k).blocking)}
         for k in graph.asset_check_keys),
        key=lambda c: (c["asset"], c["name"]),
    )
    edges = sorted(f"{p.to_user_string()} -> {n.key.to_user_string()}" for n in nodes for p in n.parent_keys)
    return {"assets": assets, "checks": checks, "edges": edges, "run_order": group_order(defs)}


def _text(snapshot: dict) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def test_definitions_match_the_committed_snapshot():
    current = _text(describe_definitions(load_definitions()))
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_ENV}=1 to write {SNAPSHOT.name}"
    committed = SNAPSHOT.read_text()
    if committed != current:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), current.splitlines(True),
                                            "committed " + SNAPSHOT.name, "loaded pipelines.definitions"))
        raise AssertionError(f"the Dagster graph changed; if that is meant, regenerate with {UPDATE_ENV}=1 "
                             f"(see this file's docstring) and commit the snapshot:\n{diff}")


def test_snapshot_shows_a_changed_graph():
    """The comparison sees a moved asset, a dropped edge and a check that stops blocking."""
    snap = describe_definitions(load_definitions())
    changed = json.loads(json.dumps(snap))
    changed["assets"]["eval/runs"]["group"] = "elsewhere"
    changed["edges"] = changed["edges"][1:]
    changed["checks"][0]["blocking"] = not changed["checks"][0]["blocking"]
    assert _text(changed) != _text(snap)
    assert _text(describe_definitions(load_definitions())) == _text(snap)  # deterministic


def test_every_group_runs_after_what_it_depends_on():
    defs = load_definitions()
    order = {g: i for i, g in enumerate(group_order(defs))}
    for n in defs.resolve_asset_graph().asset_nodes:
        for p in n.parent_keys:
            parent_group = defs.resolve_asset_graph().get(p).group_name
            assert order[parent_group] <= order[n.group_name], (p, n.key)
