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

Who judges (``judge``): "expert" (the scorer above), "mouth" (the correlation of the face's mouth opening with
the voice's loudness on the clip's speech frames, kling.perception.speech.mouth_audio_sync: the dlib mouth
landmarks are real even where an expert trained on synthetic faces is not), or "auto": the expert, except
the self-trained expert on a folder of the user's videos. That expert is trained on the synthetic demo corpus
and cannot judge real footage: on three in-sync real HDTF clips it gave Sync-C 0.04-0.08 with AV offsets -1,
+15 and -14 frames, against 0.51-0.96 on the kept demo clips, so it rejected every real clip. The step's
counts record the judge and why (``JUDGE_WHY``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
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
    judge: str = "auto"  # "expert" | "mouth" | "auto" (see the module docstring; resolved by resolve_judge)
    min_mouth_sync: float = 0.2  # judge "mouth": least mouth/audio correlation (real HDTF: own audio 0.29-0.40,
    #                              another clip's audio <= 0.17, the silent face of a side-by-side 0.09)


JUDGE_WHY = {
    "expert": "the sync expert judges (backbone {backbone})",
    "mouth": ("mouth/audio correlation judges (min {min_mouth_sync}): the self-trained sync expert was trained on the "
              "synthetic demo corpus and cannot judge real footage (in-sync real HDTF clips: Sync-C 0.04-0.08, AV "
              "offsets -14..+15 frames; kept demo clips 0.51-0.96), so it is not the filter of a folder source; "
              "set lip_sync.judge: expert to use it anyway"),
}


def resolve_judge(cfg: LipSyncConfig, demo_source: bool) -> LipSyncConfig:
    """``judge: auto`` made explicit: the expert on the demo corpus or with official weights, else the mouth."""
    if cfg.judge not in ("auto", "expert", "mouth"):
        raise ValueError(f"lip_sync.judge must be auto, expert or mouth, got {cfg.judge!r}")
    if cfg.judge != "auto":
        return cfg
    return dataclasses.replace(cfg, judge="expert" if demo_source or cfg.backbone != "expert" else "mouth")


def judge_note(cfg: LipSyncConfig) -> str:
    return JUDGE_WHY.get(cfg.judge, cfg.judge).format(**dataclasses.asdict(cfg))


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
        code = ("no_face_track" if "no face" in reason else "silent_audio" if reason.startswith("silent")
                else "too_short" if reason.startswith(("too short", "too_short")) else "lip_sync_unavailable")
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


MOUTH_BACKBONE = "mouth_audio_corr"


def mouth_decision(clip, tracks: pd.DataFrame, speech: np.ndarray | None, envelope: np.ndarray,
                   cfg: LipSyncConfig) -> dict:
    """The "mouth" judge on one clip: mouth_audio_sync on the clip's speech frames (all its frames when it has
    fewer than 10 speech frames)."""
    from kling.perception.speech import mouth_audio_sync

    a, b = int(clip.start_frame), int(clip.end_frame)
    g = tracks[(tracks["track_id"] == clip.track_id) & (tracks["frame"] >= a) & (tracks["frame"] < b)]
    mouth = np.full(b - a, np.nan)
    mouth[g["frame"].to_numpy(np.int64) - a] = g["mouth_open"].to_numpy(np.float64)
    env = np.zeros(b - a)
    part = np.asarray(envelope, np.float64)[a:b]
    env[: len(part)] = part
    on = np.flatnonzero(np.asarray(speech[a:b]) >= 0.5) if speech is not None else np.zeros(0, np.int64)
    frames, where = (on, "speech frames") if len(on) >= 10 else (None, "frames (too little speech to restrict)")
    corr, lag, n = mouth_audio_sync(mouth, env, frames)
    base = dict(clip_id=clip.clip_id, sync_c=np.nan, sync_d=np.nan, av_offset=None, shift_audio_frames=0,
                sync_backbone=MOUTH_BACKBONE, protocol_version="mouth_audio_sync/1")
    if not np.isfinite(corr):
        return base | dict(keep=False, reason="lip_sync_unavailable",
                           detail=f"mouth opening known on fewer than 10 of the clip's {b - a} frames")
    text = f"mouth/audio correlation {corr:.2f} (lag {lag:+d} frames) over {n} {where}"
    if corr < cfg.min_mouth_sync:
        return base | dict(keep=False, reason="lip_sync_low_confidence", detail=f"{text} < {cfg.min_mouth_sync:.2f}")
    return base | dict(keep=True, reason=None, detail=text)


def score_clips(video: Path, quality: pd.DataFrame, tracks: pd.DataFrame, config: LipSyncConfig,
                speech: np.ndarray | None = None, envelope: np.ndarray | None = None) -> pd.DataFrame:
    """One row per clip the quality filters kept: the sync result on its track and frames, and the decision.
    ``speech`` (per-frame VAD) and ``envelope`` (per-frame RMS) are what the "mouth" judge reads."""
    if not config.enabled:
        return pd.DataFrame(columns=COLUMNS)
    if config.judge == "mouth":
        if envelope is None:
            raise ValueError("the mouth judge needs the audio envelope (the speech step's rms column)")
        rows = [mouth_decision(c, tracks, speech, envelope, config) for c in quality[quality["kept"]].itertuples(index=False)]
        return pd.DataFrame(rows, columns=COLUMNS)
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
    out = manifest_rows.merge(decisions.drop(columns=["protocol_version"]).rename(columns={"detail": "_sync_detail"}),
                              on="clip_id", how="left")
    rejected = out["keep"].eq(False)
    out.loc[rejected, "kept"] = False
    out["reject_reasons"] = [list(r) + ([str(reason)] if rej else []) for r, reason, rej
                             in zip(out["reject_reasons"], out["reason"], rejected)]
    if "reject_detail" not in out.columns:
        out["reject_detail"] = None
    # the rejection's measured values join the detail ("code: what was measured; ...")
    out["reject_detail"] = ["; ".join(p for p in ((d if isinstance(d, str) else ""),
                                                   f"{reason}: {sd}" if rej else "") if p)
                            or None for d, reason, sd, rej in zip(out["reject_detail"], out["reason"], out["_sync_detail"], rejected)]
    return out.drop(columns=["keep", "reason", "_sync_detail"])
