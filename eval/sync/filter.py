"""The curation stage's lip-sync filter: keep a clip when its speaker's lip sync is confident enough.

A plain function over a SyncResult (from the sync expert in the demo profile, the official SyncNet in
the paper profile), so the curation asset, a notebook and a test make the same decision.

- unavailable result (no face track, silent, too short, no weights): rejected with that reason;
- Sync-C below ``min_conf``: rejected ("lip_sync_low_confidence");
- |AV offset| above ``max_offset``: rejected ("lip_sync_offset"), unless ``correct_offset``, in which case
  the clip is kept with ``shift_audio_frames`` = the AV offset to apply. In the reference's convention a
  positive AV offset means the audio leads the video: delaying the audio by that many frames (40 ms each)
  realigns it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from eval.sync.score import SyncResult


@dataclass(frozen=True)
class SyncFilterConfig:
    min_conf: float = 3.0  # official SyncNet: ~3 separates usable talking heads; set per backbone
    max_offset: int = 1  # frames
    correct_offset: bool = False


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


def lip_sync_decision(result: SyncResult, cfg: SyncFilterConfig = SyncFilterConfig()) -> SyncDecision:
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


def lip_sync_filter(video, evaluator, cfg: SyncFilterConfig = SyncFilterConfig(), tracks=None, audio=None) -> SyncDecision:
    """Score one curated clip with `evaluator` (eval.sync.pipeline.SyncEvaluator) and decide.
    `tracks`: the clip's face-track table, when the curation stage already has it."""
    return lip_sync_decision(evaluator.evaluate_video(video, audio=audio, tracks=tracks), cfg)
