"""The long leaderboard schema: one row per (run, system, benchmark, clip or aggregate, window, metric).

Metric modules produce partial rows (metric, value, stderr, n, higher_is_better, backbone, backbone_sha256,
protocol_version, clip_id, window); `complete_rows` adds the run-level fields. Numbers from different
backbones or protocol versions are never ranked together: those two columns are part of every row.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

AGGREGATE = "__all__"  # clip_id of a row that aggregates over clips
WHOLE = "all"  # window of a row computed over the whole clip

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("git_sha", pa.string()),
        ("system", pa.string()),
        ("checkpoint", pa.string()),
        ("benchmark", pa.string()),
        ("clip_id", pa.string()),
        ("window", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("stderr", pa.float64()),
        ("n", pa.int64()),
        ("higher_is_better", pa.bool_()),
        ("backbone", pa.string()),
        ("backbone_sha256", pa.string()),
        ("protocol_version", pa.string()),
        ("config_hash", pa.string()),
        ("created_at", pa.string()),
        ("status", pa.string()),  # "ok" | "unavailable"
        ("reason", pa.string()),  # why a metric is unavailable (and how to fix it), else null
    ]
)
COLUMNS = [f.name for f in SCHEMA]


@dataclasses.dataclass(frozen=True)
class RunContext:
    run_id: str
    git_sha: str
    system: str
    benchmark: str
    config_hash: str
    checkpoint: str = ""
    created_at: str = ""

    @staticmethod
    def new(system: str, benchmark: str, config_hash: str, checkpoint: str = "", run_id: str | None = None) -> "RunContext":
        return RunContext(
            run_id=run_id or uuid.uuid4().hex[:12],
            git_sha=git_sha(),
            system=system,
            benchmark=benchmark,
            config_hash=config_hash,
            checkpoint=checkpoint,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )


def git_sha(cwd: str | Path | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def complete_rows(partial: Iterable[dict[str, Any]], ctx: RunContext) -> pa.Table:
    """Add run-level fields, fill defaults, and validate against SCHEMA."""
    rows = []
    for r in partial:
        row = {c: None for c in COLUMNS}
        row.update({"clip_id": AGGREGATE, "window": WHOLE, "status": "ok"})
        row.update(r)
        row.update({k: getattr(ctx, k) for k in ("run_id", "git_sha", "system", "benchmark", "config_hash", "checkpoint", "created_at")})
        missing = [k for k in ("metric", "backbone", "protocol_version") if not row.get(k)]
        if missing:
            raise ValueError(f"leaderboard row for {row.get('metric')!r} lacks {missing}")
        if row["value"] is not None and isinstance(row["value"], float) and math.isnan(row["value"]):
            row["value"] = None
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCHEMA)
