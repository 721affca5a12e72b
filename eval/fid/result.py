"""The result of a set-against-set distance (FID, FVD): value, sample counts, backbone identity, protocol,
and its leaderboard rows (eval.leaderboard.schema's partial-row format)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

AGGREGATE = "__all__"  # eval.leaderboard.schema.AGGREGATE
WHOLE = "all"  # eval.leaderboard.schema.WHOLE
OK, UNAVAILABLE = "ok", "unavailable"


@dataclass
class DistanceResult:
    metric: str  # "fid" | "fvd"
    status: str
    reason: str | None
    value: float | None
    n_ref: int
    n_gen: int
    backbone: str
    backbone_sha256: str | None
    protocol: dict
    fetch_command: str | None = None
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"} of inputs left out
    window: str = WHOLE
    seconds: float | None = None

    @property
    def protocol_version(self) -> str:
        return self.protocol["version"]

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict:
        return {
            self.metric: self.value,
            "status": self.status,
            "reason": self.reason,
            "n": self.n_gen,
            "n_ref": self.n_ref,
            "n_gen": self.n_gen,
            "window": self.window,
            "backbone": self.backbone,
            "backbone_sha256": self.backbone_sha256,
            "protocol_version": self.protocol_version,
            "protocol": self.protocol,
            "fetch_command": self.fetch_command,
            "skipped": self.skipped,
        }

    def to_rows(self, clip_id: str = AGGREGATE) -> list[dict]:
        """One partial leaderboard row (eval.leaderboard.schema.complete_rows adds the run fields)."""
        v = float("nan") if self.value is None or not math.isfinite(self.value) else float(self.value)
        return [dict(
            clip_id=clip_id, window=self.window, metric=self.metric, value=v, stderr=None, n=int(self.n_gen),
            higher_is_better=False, backbone=self.backbone, backbone_sha256=self.backbone_sha256,
            protocol_version=self.protocol_version, status=self.status, reason=self.reason,
        )]


def unavailable(metric: str, reason: str, backbone: str, protocol: dict, fetch_command: str | None = None,
                sha256: str | None = None, n_ref: int = 0, n_gen: int = 0, **kw) -> DistanceResult:
    return DistanceResult(metric, UNAVAILABLE, reason, None, n_ref, n_gen, backbone, sha256, protocol,
                          fetch_command=fetch_command, **kw)
