"""The order in which the whole graph is materialized (`kling demo`), read from the loaded definitions.

Dagster runs one partitions definition per run, so the graph goes in one `dagster asset materialize` run
per asset group: groups in topological order of their assets' dependencies, each over every key of its
partitions definition. A new asset or group needs no change here or in the CLI.

Static partition keys (videos) are read from folders when the code location loads, and those folders fill
up as the runs go (the demo corpus): `load_definitions(fresh=True)` imports the code location again so a
group's keys are read after the runs before it. Dynamic keys (systems) are read from the Dagster instance.
"""

from __future__ import annotations

import importlib
import sys
from collections import defaultdict

import dagster as dg

MODULE = "pipelines.definitions"


def load_definitions(fresh: bool = False) -> dg.Definitions:
    """The code location's definitions; `fresh` re-imports pipelines.defs so partition keys are read anew."""
    if fresh:
        for name in [m for m in sys.modules if m == MODULE or m.startswith("pipelines.defs")]:
            del sys.modules[name]
    return importlib.import_module(MODULE).defs


def _nodes(defs: dg.Definitions) -> list:
    return [n for n in defs.resolve_asset_graph().asset_nodes if n.is_materializable]


def group_order(defs: dg.Definitions) -> list[str]:
    """Asset groups in an order where every group comes after the groups its assets depend on.

    Among groups ready together, the one the last group unblocked goes first (depth first: a line of work,
    e.g. curation through its manifest, is finished before the next starts), then by name.
    """
    nodes = _nodes(defs)
    group_of = {n.key: n.group_name for n in nodes}
    needs: dict[str, set[str]] = {g: set() for g in sorted(set(group_of.values()))}
    for n in nodes:
        needs[n.group_name] |= {group_of[p] for p in n.parent_keys if p in group_of} - {n.group_name}
    unblocks: dict[str, set[str]] = defaultdict(set)
    for g, ups in needs.items():
        for u in ups:
            unblocks[u].add(g)
    waiting = {g: set(ups) for g, ups in needs.items()}
    stack = sorted((g for g, ups in waiting.items() if not ups), reverse=True)
    order: list[str] = []
    while stack:
        g = stack.pop()
        order.append(g)
        ready = []
        for d in unblocks[g]:
            waiting[d].discard(g)
            if not waiting[d]:
                ready.append(d)
        stack.extend(sorted(ready, reverse=True))
    if len(order) != len(needs):
        cycle = sorted(g for g in needs if g not in order)
        raise ValueError(f"asset groups depend on each other in a cycle: {cycle}; split a group so each runs once")
    return order


def group_partitions(defs: dg.Definitions, group: str) -> dg.PartitionsDefinition | None:
    """The one partitions definition of a group's assets (None: unpartitioned); a run has only one."""
    found = {n.partitions_def for n in _nodes(defs) if n.group_name == group}
    if len(found) != 1:
        raise ValueError(f"asset group {group!r} mixes partitions definitions {sorted(map(str, found))}: "
                         f"one `dagster asset materialize` run takes one; give its assets separate groups")
    return found.pop()


def _dynamic(p: dg.PartitionsDefinition) -> bool:
    if isinstance(p, dg.MultiPartitionsDefinition):
        return any(_dynamic(d.partitions_def) for d in p.partitions_defs)
    return isinstance(p, dg.DynamicPartitionsDefinition)


def materialize_args(defs: dg.Definitions, group: str, instance: dg.DagsterInstance | None = None) -> list[str] | None:
    """`dagster asset materialize` arguments for every asset and partition of `group`, or None when the
    group is partitioned and has no key yet (nothing to run)."""
    args = ["--select", f"group:{group}"]
    partitions = group_partitions(defs, group)
    if partitions is None:
        return args
    if instance is None and _dynamic(partitions):
        # dynamic keys (systems) live in the instance of $DAGSTER_HOME, where the CLI's runs add them
        with dg.DagsterInstance.get() as inst:
            keys = partitions.get_partition_keys(dynamic_partitions_store=inst)
    else:
        keys = partitions.get_partition_keys(dynamic_partitions_store=instance)
    if not keys:
        return None
    # keys come in the definition's own order, so first...last is every key
    return args + ["--partition-range", f"{keys[0]}...{keys[-1]}"]
