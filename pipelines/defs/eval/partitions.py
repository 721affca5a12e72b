"""Evaluation runs are partitioned by (benchmark, system): a new system or benchmark recomputes nothing else.

Benchmarks are static keys read from the profile when the code location loads. Systems are dynamic keys
kept in the Dagster instance (`systems`): the eval/controls asset registers every folder under
<data>/systems/<benchmark>/ (the controls it generates there, and systems imported there with
`kling system import`), so a new system needs a run of eval/controls, not a reload of the code location.
"""

import dagster as dg

from eval.runs import benchmark_names, system_names
from kling.config import load_profile
from kling.paths import Layout

SYSTEMS = "systems"
system_partitions = dg.DynamicPartitionsDefinition(name=SYSTEMS)

eval_partitions = dg.MultiPartitionsDefinition({
    "benchmark": dg.StaticPartitionsDefinition(benchmark_names(load_profile())),
    "system": system_partitions,
})


def register_systems(instance: dg.DagsterInstance, layout: Layout, benchmarks: list[str]) -> list[str]:
    """Add every system folder of `benchmarks` to the `systems` partitions; returns the names added."""
    known = set(instance.get_dynamic_partitions(SYSTEMS))
    new = sorted({s for b in benchmarks for s in system_names(layout, b)} - known)
    if new:
        instance.add_dynamic_partitions(SYSTEMS, new)
    return new


def split_eval_key(key: str) -> tuple[str, str]:
    """(benchmark, system) of an eval_partitions key ("benchmark|system")."""
    dims = key.keys_by_dimension if hasattr(key, "keys_by_dimension") else dict(zip(["benchmark", "system"], key.split("|")))
    return dims["benchmark"], dims["system"]
