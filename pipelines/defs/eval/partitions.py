"""Evaluation runs are partitioned by (benchmark, system): a new system or benchmark recomputes nothing else.

Keys are read when the code location loads: benchmarks from the profile, systems from the folders under
<data>/systems/<benchmark>/ (controls are generated there by eval/controls; external systems are imported
there with `kling system import`). Reload the code location after adding a system.
"""

import dagster as dg

from kling.paths import Layout
from eval.runs import benchmark_names, system_names
from kling.config import load_profile


def _systems() -> list[str]:
    layout = Layout.default()
    names = {s for b in benchmark_names(load_profile()) for s in system_names(layout, b)}
    return sorted(names)


eval_partitions = dg.MultiPartitionsDefinition({
    "benchmark": dg.StaticPartitionsDefinition(benchmark_names(load_profile())),
    "system": dg.StaticPartitionsDefinition(_systems()),
})
