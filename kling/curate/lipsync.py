"""The curation stage's lip-sync filter: score every kept clip's speaker track, then keep or reject it.

The scorer is the official SyncNet (paper profile) or the self-trained sync expert (demo profile, trained by
training/sync_expert on the clips the quality filters kept); the decision rule is eval.sync.filter's
(confidence threshold, maximum AV offset, optional offset correction). A scorer that cannot be loaded makes
every clip `lip_sync_unavailable` with the reason: unscored clips are never kept silently.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path

import pandas as pd

COLUMNS = ["clip_id", "keep", "reason", "detail", "sync_c", "sync_d", "av_offset", "shift_audio_frames",
           "sync_backbone", "protocol_version"]


@dataclasses.dataclass(frozen=True)
class LipSyncConfig:
    enabled: bool = True  # False: clips pass without a lip-sync check (recorded as such in the step's counts)
    backbone: str = "expert"  # "expert" (self-trained, demo) | "syncnet_v2" (official weights)
    min_conf: float = 3.0  # Sync-C threshold; set per backbone (their confidence scales differ)
    max_offset: int = 1  # frames
    correct_offset: bool = False  # keep clips with a larger offset, recording the audio shift to apply
    weights: str | None = None  # explicit checkpoint (expert folder or syncnet_v2.model); default: registry / latest


def scorer_identity(config: LipSyncConfig) -> dict:
    """What the scores depend on besides the clip: the scorer's name and weight file (for step caching)."""
    from kling.weights import sha256_of

    path = Path(config.weights) if config.weights else _weights_path(config.backbone)
    if path is not None and path.is_dir():
        from eval.sync.expert import CHECKPOINT

        path = path / CHECKPOINT
    return {"backbone": config.backbone, "weights": str(path) if path else None,
            "sha256": sha256_of(path) if path and path.is_file() else None}


def _weights_path(backbone: str) -> Path | None:
    """The scorer's file: the last trained expert's checkpoint, or the registry's syncnet_v2.model."""
    if backbone == "expert":
        from eval.runs import EvalLayout
        from eval.sync.expert import CHECKPOINT
        from kling.train.sync_expert import latest_checkpoint_dir

        d = latest_checkpoint_dir(EvalLayout.default().expert_dir)
        return d / CHECKPOINT if d else None
    from kling.weights import get_weight

    return get_weight("syncnet_v2").path()


@lru_cache(maxsize=4)
def _evaluator(backbone: str, weights: str | None):
    from eval.sync.expert import expert_evaluator
    from eval.sync.pipeline import SyncEvaluator

    if backbone == "expert":
        return expert_evaluator(weights or "<no sync expert checkpoint: materialize training/sync_expert>")
    return SyncEvaluator.official(weights if weights and Path(weights).is_file() else None)


def score_clips(video: Path, quality: pd.DataFrame, tracks: pd.DataFrame, config: LipSyncConfig) -> pd.DataFrame:
    """One row per clip the quality filters kept: the sync result on its track and frames, and the decision."""
    from eval.sync.filter import SyncFilterConfig, lip_sync_decision

    if not config.enabled:
        return pd.DataFrame(columns=COLUMNS)
    ident = scorer_identity(config)
    ev = _evaluator(config.backbone, ident["weights"])
    cfg = SyncFilterConfig(min_conf=config.min_conf, max_offset=config.max_offset, correct_offset=config.correct_offset)
    rows = []
    for clip in quality[quality["kept"]].itertuples(index=False):
        sel = (tracks["track_id"] == clip.track_id) & (tracks["frame"] >= clip.start_frame) & (tracks["frame"] < clip.end_frame)
        result = ev.evaluate_video(video, tracks=tracks[sel])
        d = lip_sync_decision(result, cfg)
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
