"""The curation stage's lip-sync filter: score every kept clip's speaker track, then keep or reject it.

The scorer is the official SyncNet (paper profile) or the self-trained sync expert (demo profile, trained by
training/sync_expert on the clips the quality filters kept), chosen by kling.perception.sync.evaluator_for
as evaluation chooses it. A scorer that cannot be loaded makes every clip `lip_sync_unavailable` with the
reason: unscored clips are never kept silently. The decision rule (lip_sync_decision):

- unavailable result (no face track, silent, too short, no weights): rejected with that reason;
- Sync-C below ``min_conf``: rejected ("lip_sync_low_confidence");
- |AV offset| above ``max_offset``: rejected ("lip_sync_offset"), unless ``correct_offset``, in which case
  the clip is kept with ``shift_audio_frames`` = the AV offset to apply. In the reference's convention a
  positive AV offset means the audio leads the video: delaying the audio by that many frames (40 ms each)
  realigns it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from kling.perception.sync.score import SyncResult

COLUMNS = ["clip_id", "keep", "reason", "detail", "sync_c", "sync_d", "av_offset", "shift_audio_frames",
           "sync_backbone", "protocol_version"]


@dataclasses.dataclass(frozen=True)
class LipSyncConfig:
    enabled: bool = True  # False: clips pass without a lip-sync check (recorded as such in the step's counts)
    backbone: str = "expert"  # "expert" (self-trained, demo) | "syncnet_v2" (official weights)
    min_conf: float = 3.0  # Sync-C threshold; set per backbone (official SyncNet: ~3; their scales differ)
    max_offset: int = 1  # frames
    correct_offset: bool = False  # keep clips with a larger offset, recording the audio shift to apply
    weights: str | None = None  # explicit checkpoint (expert folder or syncnet_v2.model); default: registry / latest


@dataclass(frozen=True)
class SyncDecision:
    keep: bool
    reason: str | None  # snake_case rejection code, None when kept
    detail: str
    sync_c: float | None
    av_offset: int | None
    shift_audio_frames: int  # 0 unless an offset correction is asked for and applied
    backbone: str
    protocol_version: str

    def to_dict(self) -> dict:
        return asdict(self)


def lip_sync_decision(result: SyncResult, cfg: LipSyncConfig = LipSyncConfig()) -> SyncDecision:
    base = dict(sync_c=result.sync_c, av_offset=result.av_offset, backbone=result.backbone,
                protocol_version=result.protocol_version)
    if not result.ok:
        reason = result.reason or "unavailable"
        code = "no_face_track" if "no face" in reason else "silent_audio" if reason.startswith("silent") else "lip_sync_unavailable"
        return SyncDecision(False, code, reason, shift_audio_frames=0, **base)
    if result.sync_c < cfg.min_conf:
        return SyncDecision(False, "lip_sync_low_confidence", f"Sync-C {result.sync_c:.2f} < {cfg.min_conf:.2f}",
                            shift_audio_frames=0, **base)
    if abs(result.av_offset) > cfg.max_offset:
        if not cfg.correct_offset:
            return SyncDecision(False, "lip_sync_offset", f"AV offset {result.av_offset:+d} frames (max {cfg.max_offset})",
                                shift_audio_frames=0, **base)
        return SyncDecision(True, None, f"AV offset {result.av_offset:+d} frames corrected", shift_audio_frames=result.av_offset, **base)
    return SyncDecision(True, None, f"Sync-C {result.sync_c:.2f}, AV offset {result.av_offset:+d}", shift_audio_frames=0, **base)


def scorer_identity(config: LipSyncConfig) -> dict:
    """What the scores depend on besides the clip: the scorer's name and weight file (for step caching)."""
    from kling.weights import sha256_of

    path = Path(config.weights) if config.weights else _weights_path(config.backbone)
    if path is not None and path.is_dir():
        from kling.perception.sync.expert import CHECKPOINT

        path = path / CHECKPOINT
    return {"backbone": config.backbone, "weights": str(path) if path else None,
            "sha256": sha256_of(path) if path and path.is_file() else None}


def _weights_path(backbone: str) -> Path | None:
    """The scorer's file: the last trained expert's checkpoint, or the registry's syncnet_v2.model."""
    if backbone == "expert":
        from kling.paths import Layout
        from kling.perception.sync.expert import CHECKPOINT
        from kling.perception.sync.expert import latest_checkpoint_dir

        d = latest_checkpoint_dir(Layout.default().sync_expert)
        return d / CHECKPOINT if d else None
    from kling.weights import get_weight

    return get_weight("syncnet_v2").path()


@lru_cache(maxsize=4)
def _evaluator(backbone: str, weights: str | None):
    from kling.perception.sync import evaluator_for

    return evaluator_for(backbone, weights)


def score_clips(video: Path, quality: pd.DataFrame, tracks: pd.DataFrame, config: LipSyncConfig) -> pd.DataFrame:
    """One row per clip the quality filters kept: the sync result on its track and frames, and the decision."""
    if not config.enabled:
        return pd.DataFrame(columns=COLUMNS)
    ident = scorer_identity(config)
    ev = _evaluator(config.backbone, ident["weights"])
    rows = []
    for clip in quality[quality["kept"]].itertuples(index=False):
        sel = (tracks["track_id"] == clip.track_id) & (tracks["frame"] >= clip.start_frame) & (tracks["frame"] < clip.end_frame)
        result = ev.evaluate_video(video, tracks=tracks[sel])
        d = lip_sync_decision(result, config)
        rows.append({"clip_id": clip.clip_id, "keep": d.keep, "reason": d.reason, "detail": d.detail, "sync_c": d.sync_c,
                     "sync_d": result.sync_d, "av_offset": d.av_offset, "shift_audio_frames": d.shift_audio_frames,
                     "sync_backbone": d.backbone, "protocol_version": d.protocol_version})
    return pd.DataFrame(rows, columns=COLUMNS)


def apply_decisions(manifest_rows: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """Fold lip-sync decisions into quality-filtered rows: a rejection adds its reason and clears `kept`."""
    if decisions is None or decisions.empty:
        return manifest_rows
    out = manifest_rows.merge(decisions.drop(columns=["detail", "protocol_version"]), on="clip_id", how="left")
    rejected = out["keep"].eq(False)
    out.loc[rejected, "kept"] = False
    out["reject_reasons"] = [list(r) + ([str(reason)] if rej else []) for r, reason, rej
                             in zip(out["reject_reasons"], out["reason"], rejected)]
    return out.drop(columns=["keep", "reason"])
