"""Synthetic leaderboard rows with known means, for tests and for trying the leaderboard tools without
running any metric. Values are drawn around the given means with a seeded generator."""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pyarrow as pa

from eval.leaderboard.schema import RunContext, complete_rows

# metric -> (higher_is_better, backbone, backbone_sha256, protocol_version)
METRICS: dict[str, tuple[bool | None, str, str, str]] = {
    "sync_c": (True, "syncnet_v2", "a" * 64, "sync_cd/1"),
    "sync_d": (False, "syncnet_v2", "a" * 64, "sync_cd/1"),
    "sync_av_offset": (None, "syncnet_v2", "a" * 64, "sync_cd/1"),
    "csim": (True, "arcface_w600k_r50", "b" * 64, "csim/1"),
    "fvd": (False, "i3d_kinetics400", "c" * 64, "fvd/1"),
}


def system_rows(system: str, means: Mapping[str, float], cases: Iterable[str], benchmark: str = "demo",
                noise: float = 0.05, seed: int = 0, run_id: str | None = None, created_at: str = "2026-11-01T00:00:00+00:00",
                windows: int = 0, missing: Iterable[str] = (), metrics: Mapping[str, tuple] | None = None,
                set_level: Iterable[str] = ("fvd",)) -> pa.Table:
    """One run of `system`: per-case rows for each metric in `means` (set-level metrics get one aggregate
    row), optional per-window rows ("0-10s", ...), and unavailable rows for the `missing` cases."""
    spec = dict(METRICS) | dict(metrics or {})
    rng = np.random.default_rng([seed, sum(map(ord, system))])  # not hash(): salted per process
    cases, missing = list(cases), set(missing)
    rows = []
    for metric, mean in means.items():
        hib, backbone, sha, proto = spec[metric]
        base = dict(metric=metric, higher_is_better=hib, backbone=backbone, backbone_sha256=sha, protocol_version=proto)
        if metric in set_level:
            rows.append(base | dict(value=float(mean), n=len(cases), stderr=None))
            continue
        for case in cases:
            if case in missing:
                rows.append(base | dict(clip_id=case, value=None, n=0, status="unavailable", reason="missing: no output"))
                continue
            rows.append(base | dict(clip_id=case, value=float(mean + noise * rng.standard_normal()), n=25))
            for w in range(windows):
                rows.append(base | dict(clip_id=case, window=f"{10 * w}-{10 * w + 10}s",
                                        value=float(mean - 0.01 * w + noise * rng.standard_normal()), n=5))
    ctx = RunContext(run_id=run_id or f"run-{system}", git_sha="0" * 40, system=system, benchmark=benchmark,
                     config_hash="cfg", created_at=created_at)
    return complete_rows(rows, ctx)


def fill_synthetic_store(root, cases: Iterable[str] = tuple(f"c{i}" for i in range(5)), csim_gt: float = 0.85) -> None:
    """A small store to try the leaderboard, dashboard and gate on: two runs of "ours" (with per-window
    rows), "theirs" with a missing case, and the four controls. `csim_gt` < 0.2 breaks the csim controls."""
    from eval.leaderboard import controls as C
    from eval.leaderboard import store

    cases = list(cases)
    store.write_run(system_rows("ours", {"sync_c": 7.0, "csim": 0.8, "fvd": 321.5}, cases, windows=3,
                                run_id="r-old", created_at="2026-10-01T00:00:00+00:00"), root)
    store.write_run(system_rows("ours", {"sync_c": 7.2, "csim": 0.81, "fvd": 300.25}, cases, windows=3, seed=1,
                                run_id="r-new", created_at="2026-11-01T00:00:00+00:00"), root)
    store.write_run(system_rows("theirs", {"sync_c": 6.0, "csim": 0.7, "fvd": 410.0}, cases, missing=cases[2:3]), root)
    for s, sc, cs, fvd in ((C.GROUND_TRUTH, 8.0, csim_gt, 50.0), (C.AUDIO_SHIFTED, 3.0, 0.85, 52.0),
                           (C.STILL_REFERENCE, 0.5, 0.9, 900.0), (C.OTHER_IDENTITY, 7.5, 0.2, 120.0)):
        store.write_run(system_rows(s, {"sync_c": sc, "csim": cs, "fvd": fvd}, cases), root)
