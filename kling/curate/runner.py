"""Running one curation step on one video: caching, status records, and never letting a bad clip sink a run.

Each (step, video) writes its outputs, then a small JSON record last (atomically): the record's presence
means the outputs are complete. A record carries a fingerprint of everything the result depends on (the
step's version and config, the upstream records' fingerprints, the source file's size and mtime), so a
re-run with the same inputs is a no-op and a changed input recomputes only what depends on it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from kling.atomic import atomic_write_json
from kling.hashing import config_hash
from kling.io.errors import MediaError

log = logging.getLogger(__name__)


class ClipRejected(Exception):
    """A step decided this video cannot be used (no face, no audio, ...): recorded, not raised further."""

    def __init__(self, reason: str, detail: str = "", counts: dict | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.counts = counts or {}


@dataclasses.dataclass
class StepRecord:
    step: str
    video_id: str
    status: str  # "ok" | "rejected" | "error"
    fingerprint: str
    reason: str | None = None
    detail: str | None = None
    counts: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    created_at: str = ""
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Workspace:
    """Files of one curation run: <root>/<step>/<video_id>.<ext> plus <root>/<step>/<video_id>.json."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def output(self, step: str, video_id: str, suffix: str) -> Path:
        return self.root / step / f"{video_id}{suffix}"

    def record_path(self, step: str, video_id: str) -> Path:
        return self.output(step, video_id, ".json")

    def load(self, step: str, video_id: str) -> StepRecord | None:
        path = self.record_path(step, video_id)
        if not path.exists():
            return None
        return StepRecord(**json.loads(path.read_text()))


def run_step(
    ws: Workspace,
    step: str,
    video_id: str,
    fingerprint_inputs: dict[str, Any],
    fn: Callable[[], dict[str, Any]],
    upstream: list[StepRecord] = (),
) -> StepRecord:
    """Run `fn` (which writes the step's outputs and returns counts) unless an identical result exists.

    A rejected upstream step propagates its reason without running `fn`. MediaError and ClipRejected become
    `rejected` records; any other exception becomes an `error` record with its traceback, logged, so one
    bad clip never fails the run and the other clips' results are kept.
    """
    # Upstream identity includes when and how it ran: a recomputed upstream invalidates this step.
    ups = [(u.step, u.fingerprint, u.status, u.created_at) for u in upstream]
    fingerprint = config_hash({"step": step, **fingerprint_inputs, "upstream": ups})
    previous = ws.load(step, video_id)
    if previous is not None and previous.fingerprint == fingerprint and previous.status != "error":
        previous.cached = True  # errors are retried: they may come from a bug fixed since
        return previous
    start = time.perf_counter()
    record = StepRecord(step=step, video_id=video_id, status="ok", fingerprint=fingerprint)
    blocked = next((u for u in upstream if not u.ok), None)
    if blocked is not None:
        record.status, record.reason = "rejected", blocked.reason
        record.detail = f"upstream step {blocked.step}: {blocked.detail or blocked.reason}"
    else:
        try:
            record.counts = fn() or {}
        except ClipRejected as exc:
            record.status, record.reason, record.detail, record.counts = "rejected", exc.reason, exc.detail, exc.counts
        except MediaError as exc:
            record.status, record.reason, record.detail = "rejected", exc.reason, str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug on one clip must not lose the others' results
            log.exception("%s failed on %s", step, video_id)
            record.status, record.reason = "error", f"error:{type(exc).__name__}"
            record.detail = "".join(traceback.format_exception_only(exc)).strip() + "\n" + traceback.format_exc(limit=8)
    record.seconds = round(time.perf_counter() - start, 3)
    record.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if record.status != "ok":
        log.warning("%s: %s %s (%s)", step, video_id, record.status, record.reason)
    atomic_write_json(ws.record_path(step, video_id), dataclasses.asdict(record) | {"cached": False})
    return record
