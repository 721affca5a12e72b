"""Offset curve, Sync-C / Sync-D, framewise confidence, and the result objects.

Exactly ``SyncNetInstance.evaluate``: window i's lip feature is compared (``pairwise_distance``, eps 1e-6)
with the audio features of windows i-15..i+15 (zero vectors outside the clip), distances are averaged
over windows per offset; AV offset = 15 - argmin, Sync-D = min, Sync-C = median - min. Framewise
confidence: median(curve) - distance at the best offset, per window, median filtered (kernel 9).
The number of windows is the reference's: min(video frames, audio samples // 640) - 5.

AV offset convention (the reference's): lip window i matches audio window i - offset best, so a
positive offset means the audio leads the video (the sound comes that many 40 ms frames early).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kling.perception.sync.crop import medfilt

VSHIFT = 15
PROTOCOL_VERSION = "sync_cd/1"  # syncnet_python evaluate protocol, lossless crops (see DESIGN.md section 5)
EXPERT_PROTOCOL_VERSION = "sync_cd_expert/1"  # same scoring, the expert's own input protocol
MIN_FRAMES = 6  # the reference needs min_length - 5 >= 1 windows
NEAR_TIE = 1e-3  # a curve whose two lowest values are closer than this has no well-defined AV offset

OK = "ok"
UNAVAILABLE = "unavailable"


@dataclass
class OffsetCurve:
    dists: np.ndarray  # (n_windows, 31) distance per window and offset index (offset = VSHIFT - index)
    mean_dists: np.ndarray  # (31,)

    @property
    def min_index(self) -> int:
        return int(np.argmin(self.mean_dists))

    @property
    def av_offset(self) -> int:
        return VSHIFT - self.min_index

    @property
    def sync_d(self) -> float:
        return float(self.mean_dists[self.min_index])

    @property
    def sync_c(self) -> float:
        # torch.median of an odd-length vector is the middle value, as np.median
        return float(np.median(self.mean_dists) - self.mean_dists[self.min_index])

    @property
    def near_tie(self) -> bool:
        two = np.partition(self.mean_dists, 1)[:2]
        return bool(two[1] - two[0] < NEAR_TIE)

    def framewise_conf(self) -> np.ndarray:
        fconf = np.median(self.mean_dists) - self.dists[:, self.min_index]
        return medfilt(fconf, 9) if len(fconf) else fconf


def offset_curve(lip: torch.Tensor, aud: torch.Tensor, vshift: int = VSHIFT) -> OffsetCurve:
    """lip, aud (n, d) features of the same n windows -> per-window distances at offsets vshift..-vshift."""
    if lip.shape != aud.shape or lip.shape[0] == 0:
        raise ValueError(f"need equal, non-empty feature sets, got {tuple(lip.shape)} and {tuple(aud.shape)}")
    n, win = lip.shape[0], 2 * vshift + 1
    audp = F.pad(aud.float(), (0, 0, vshift, vshift))
    cand = audp.unfold(0, win, 1).permute(0, 2, 1)  # (n, 31, d): audio windows i-15..i+15
    d = F.pairwise_distance(lip.float()[:, None, :].expand(n, win, -1).reshape(n * win, -1), cand.reshape(n * win, -1))
    dists = d.reshape(n, win)
    return OffsetCurve(dists=dists.numpy(), mean_dists=dists.mean(0).numpy())


def _f(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass
class TrackSyncResult:
    """Scores of one face track (or of a whole pre-cropped video, track_id 0)."""

    track_id: int
    status: str = OK
    reason: str | None = None
    av_offset: int | None = None
    sync_c: float | None = None
    sync_d: float | None = None
    offset_dists: list[float] | None = None  # offset -15 first
    framewise_conf: list[float] | None = None
    near_tie: bool | None = None
    start_frame: int = 0
    n_frames: int = 0
    n_windows: int = 0
    mean_box_size: float | None = None

    @staticmethod
    def from_curve(curve: OffsetCurve, track_id: int = 0, **kw: Any) -> "TrackSyncResult":
        return TrackSyncResult(
            track_id=track_id,
            av_offset=curve.av_offset,
            sync_c=curve.sync_c,
            sync_d=curve.sync_d,
            # the reference's index 0 is offset +15; reported here with offset -15 first
            offset_dists=[float(v) for v in curve.mean_dists[::-1]],
            framewise_conf=[round(float(v), 5) for v in curve.framewise_conf()],
            near_tie=curve.near_tie,
            n_windows=int(curve.dists.shape[0]),
            **kw,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("sync_c", "sync_d", "mean_box_size"):
            d[k] = _f(d[k])
        return d


@dataclass
class SyncResult:
    """Lip-sync result of one video: the chosen speaker's numbers plus every track's."""

    video: str
    status: str = OK
    reason: str | None = None
    av_offset: int | None = None
    sync_c: float | None = None
    sync_d: float | None = None
    offset_dists: list[float] | None = None
    speaker_track: int | None = None
    speaker_rule: str = "max_sync_c"
    tracks: list[TrackSyncResult] = field(default_factory=list)
    backbone: str = "syncnet_v2"
    backbone_sha256: str | None = None
    protocol_version: str = PROTOCOL_VERSION
    fetch_command: str | None = None
    audio_dbfs: float | None = None
    video_frames: int | None = None
    audio_frames: int | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def choose_speaker(self) -> None:
        """Clip numbers = the active speaker's: the scored track with the highest Sync-C (longest on ties)."""
        scored = [t for t in self.tracks if t.status == OK]
        if not scored:
            self.status = UNAVAILABLE
            reasons = sorted({t.reason for t in self.tracks if t.reason})
            self.reason = self.reason or ("; ".join(reasons) if reasons else "no face track")
            return
        best = max(scored, key=lambda t: (t.sync_c, t.n_windows, -t.track_id))
        self.status, self.reason = OK, None
        self.speaker_track = best.track_id
        self.av_offset, self.sync_c, self.sync_d, self.offset_dists = best.av_offset, best.sync_c, best.sync_d, best.offset_dists

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tracks"] = [t.to_dict() for t in self.tracks]
        for k in ("sync_c", "sync_d", "audio_dbfs"):
            d[k] = _f(d[k]) if d[k] is None or math.isfinite(d[k]) else None
        return d

    def leaderboard_rows(self, clip_id: str | None = None) -> list[dict]:
        """Partial leaderboard rows (eval.leaderboard.schema.complete_rows adds the run fields)."""
        clip = clip_id or self.video
        rows = []
        for metric, value, hib in (("sync_c", self.sync_c, True), ("sync_d", self.sync_d, False),
                                   ("sync_av_offset", self.av_offset, None)):
            rows.append({
                "clip_id": clip, "metric": metric, "value": None if value is None else float(value),
                "n": self.tracks[[t.track_id for t in self.tracks].index(self.speaker_track)].n_windows
                if self.ok and self.speaker_track is not None else 0,
                "higher_is_better": hib, "backbone": self.backbone, "backbone_sha256": self.backbone_sha256 or "",
                "protocol_version": self.protocol_version, "status": self.status,
                "reason": None if self.ok else self.reason,
            })
        return rows
