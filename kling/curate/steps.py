"""The curation steps for one video, in order, as plain functions over a Workspace.

normalise -> shots -> face_tracks -> speech -> quality -> lip_sync, then `build_manifest` over all videos
(lip_sync scores with the sync expert, which is trained on the quality-kept clips between the two). Each step
reads its upstream outputs from the workspace, writes its own (Parquet, atomically) and returns a
StepRecord (kling.curate.runner): a Dagster asset maps a step over its partitions, a test or a notebook
calls the same function directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from kling.atomic import write_parquet_atomic
from kling.config import Profile
from kling.curate.runner import ClipRejected, StepRecord, Workspace, run_step
from kling.curate.sources import VideoRef
from kling.hashing import config_hash

STEPS = ["normalise", "shots", "face_tracks", "speech", "quality", "lip_sync"]
UPSTREAM = {
    "normalise": [],
    "shots": ["normalise"],
    "face_tracks": ["normalise", "shots"],
    "speech": ["normalise", "face_tracks"],
    "quality": ["normalise", "shots", "face_tracks", "speech"],
    "lip_sync": ["normalise", "face_tracks", "speech", "quality"],
}
# Rows per Parquet row group of a per-frame table (face tracks: ~0.6 KB a row), written one group at a time; small
# groups also keep the readers' buffers small (quality decodes the landmarks one group at a time: 256 rows took
# half the memory that 1024 did).
ROW_GROUP_ROWS = 256
# Bump a step's version when its code changes its output: cached results are then recomputed.
VERSIONS = {"normalise": 2, "shots": 1, "face_tracks": 2, "speech": 2, "quality": 2, "lip_sync": 2}


def _configs(profile: Profile) -> dict[str, Any]:
    from kling.perception.faces.tracks import FaceTrackConfig
    from kling.curate.filters import FilterConfig
    from kling.curate.lipsync import LipSyncConfig, resolve_judge
    from kling.curate.normalise import NormaliseConfig
    from kling.curate.quality import QualityConfig
    from kling.perception.speech import VadConfig

    return {
        "normalise": NormaliseConfig(**profile.section("normalise")),
        "shots": {"threshold": 27.0, "min_scene_len": 15, **profile.section("shots")},
        "face_tracks": FaceTrackConfig(**profile.section("faces")),
        "speech": VadConfig(**profile.section("speech")),
        "quality": (QualityConfig(**profile.section("quality")), FilterConfig(**profile.section("filters"))),
        # judge "auto" resolved here: the demo-trained expert does not judge a folder of real videos
        "lip_sync": resolve_judge(LipSyncConfig(**profile.section("lip_sync")), profile.uses_demo_corpus),
    }


def step_config_hash(profile: Profile, step: str) -> str:
    return config_hash(_configs(profile)[step])


def _normalised(ws: Workspace, vid: str) -> Path:
    return ws.output("normalise", vid, ".mp4")


def _read_shots(ws: Workspace, vid: str):
    from kling.perception.shots import shots_from_frame

    return shots_from_frame(pd.read_parquet(ws.output("shots", vid, ".parquet")))


def _do_normalise(ws: Workspace, ref: VideoRef, cfg) -> dict:
    from kling.curate.normalise import normalise_video

    return normalise_video(ref.path, _normalised(ws, ref.video_id), cfg)


def _do_shots(ws: Workspace, ref: VideoRef, cfg) -> dict:
    from kling.perception.shots import detect_shots, shots_to_frame

    shots = detect_shots(_normalised(ws, ref.video_id), **cfg)
    write_parquet_atomic(shots_to_frame(shots), ws.output("shots", ref.video_id, ".parquet"), {"config": cfg})
    return {"shots": len(shots), "cuts": [int(s.start_frame) for s in shots[1:]]}


def _do_face_tracks(ws: Workspace, ref: VideoRef, cfg) -> dict:
    from kling.perception.faces.tracks import FACE_TRACKS_SCHEMA, no_track_reason, stream_face_tracks

    stream = stream_face_tracks(_normalised(ws, ref.video_id), shots=_read_shots(ws, ref.video_id), config=cfg)
    # rows written as they become final, in row groups of ROW_GROUP_ROWS; the counts are known at the end
    write_parquet_atomic(stream.arrow_parts(ROW_GROUP_ROWS), ws.output("face_tracks", ref.video_id, ".parquet"),
                         schema=FACE_TRACKS_SCHEMA, metadata_at_end=lambda: {"summary": stream.summary})
    if stream.skip_reason:
        raise ClipRejected(*no_track_reason(stream.summary, cfg), counts=stream.summary)
    return stream.summary


def _do_speech(ws: Workspace, ref: VideoRef, cfg) -> dict:
    from kling.perception.speech import bind_speakers, scan_audio, speech_from_scan
    from kling.io.audio import iter_audio

    vid = ref.video_id
    n_frames = int(ws.load("normalise", vid).counts["frames"])
    blocks = iter_audio(_normalised(ws, vid))
    if blocks is None:
        raise ClipRejected("no_audio", "the video has no audio stream")
    scan = scan_audio(blocks)  # one decode, a block at a time: VAD, RMS envelope and level of the whole track
    vad = speech_from_scan(scan, n_frames=n_frames, config=cfg)
    rms = np.zeros(n_frames, np.float32)  # the voice's loudness per frame: what the lip-sync "mouth" judge reads
    rms[: min(n_frames, len(scan.envelope))] = scan.envelope[:n_frames]
    frames = pd.DataFrame({"frame": np.arange(n_frames, dtype=np.int32), "speech": vad.frame_speech, "prob": vad.frame_prob,
                           "rms": rms})
    tracks = pd.read_parquet(ws.output("face_tracks", vid, ".parquet"), columns=["frame", "track_id", "mouth_open"])
    binding = bind_speakers(vad.segments, tracks, envelope=scan.envelope)
    meta = {"segments": vad.segments, "speech_ratio": vad.speech_ratio, "reason": vad.reason}
    write_parquet_atomic(frames, ws.output("speech", vid, ".parquet"), meta)
    write_parquet_atomic(binding, ws.output("speech", vid, ".speakers.parquet"), meta)
    bound = binding[binding["status"] == "bound"]["track_id"].tolist() if len(binding) else []
    return {"segments": len(vad.segments), "speech_ratio": round(vad.speech_ratio, 4), "vad_note": vad.reason,
            "speaker_tracks": sorted({int(t) for t in bound})}


def _do_quality(ws: Workspace, ref: VideoRef, cfgs) -> dict:
    from kling.curate.filters import apply_filters, reason_counts
    from kling.curate.quality import compute_quality

    qcfg, fcfg = cfgs
    vid = ref.video_id
    tracks = ws.output("face_tracks", vid, ".parquet")  # a path: compute_quality reads only what it needs
    vad = pd.read_parquet(ws.output("speech", vid, ".parquet"), columns=["speech"])["speech"].to_numpy()
    quality = compute_quality(_normalised(ws, vid), tracks, _read_shots(ws, vid), vad, qcfg, video_id=vid)
    if len(quality) == 0:
        n_frames = int(ws.load("normalise", vid).counts["frames"])
        if n_frames < qcfg.min_clip_frames:
            raise ClipRejected("too_short", f"{n_frames} frames < {qcfg.min_clip_frames} needed by quality (min_clip_frames)")
        raise ClipRejected("no_candidates", f"no face track runs {qcfg.min_clip_frames} consecutive frames inside one "
                                            f"shot (quality min_clip_frames)")
    filtered = apply_filters(quality, fcfg)
    filtered["source_path"] = str(ref.path)
    write_parquet_atomic(filtered, ws.output("quality", vid, ".parquet"), {"config": cfgs})
    return {"candidates": len(filtered), "kept": int(filtered["kept"].sum()), "rejections": reason_counts(filtered)}


def _do_lip_sync(ws: Workspace, ref: VideoRef, cfg) -> dict:
    from kling.curate.lipsync import judge_note, score_clips

    vid = ref.video_id
    quality = pd.read_parquet(ws.output("quality", vid, ".parquet"))
    if cfg.judge == "mouth":  # landmarks and loudness only: the expert is not loaded
        tracks = pd.read_parquet(ws.output("face_tracks", vid, ".parquet"), columns=["frame", "track_id", "mouth_open"])
        speech = pd.read_parquet(ws.output("speech", vid, ".parquet"), columns=["speech", "rms"])
        decisions = score_clips(_normalised(ws, vid), quality, tracks, cfg, speech=speech["speech"].to_numpy(np.float64),
                                envelope=speech["rms"].to_numpy(np.float64))
    else:
        tracks = pd.read_parquet(ws.output("face_tracks", vid, ".parquet"))
        decisions = score_clips(_normalised(ws, vid), quality, tracks, cfg)
    note = judge_note(cfg)
    write_parquet_atomic(decisions, ws.output("lip_sync", vid, ".parquet"), {"config": cfg, "judge": note})
    rejected = decisions[~decisions["keep"].astype(bool)] if len(decisions) else decisions
    return {"enabled": cfg.enabled, "judge": cfg.judge, "judge_note": note, "scored": len(decisions),
            "rejected": len(rejected), "rejections": rejected["reason"].value_counts().to_dict() if len(rejected) else {}}


_IMPL: dict[str, Callable[[Workspace, VideoRef, Any], dict]] = {
    "normalise": _do_normalise,
    "shots": _do_shots,
    "face_tracks": _do_face_tracks,
    "speech": _do_speech,
    "quality": _do_quality,
    "lip_sync": _do_lip_sync,
}


def run_video_step(step: str, ws: Workspace, ref: VideoRef, profile: Profile) -> StepRecord:
    """Run one step on one video (or return its cached record). Upstream steps must have run."""
    upstream = []
    for name in UPSTREAM[step]:
        rec = ws.load(name, ref.video_id)
        if rec is None:
            raise RuntimeError(f"step {step} on {ref.video_id} needs step {name} first")
        upstream.append(rec)
    cfg = _configs(profile)[step]
    inputs: dict[str, Any] = {"version": VERSIONS[step], "config": cfg}
    if step == "lip_sync":
        from kling.curate.lipsync import scorer_identity

        inputs["scorer"] = scorer_identity(cfg)  # a retrained expert rescored every clip
    if step == "normalise":
        st = Path(ref.path).stat() if Path(ref.path).exists() else None
        inputs["source"] = {"path": str(ref.path), "size": st and st.st_size, "mtime_ns": st and st.st_mtime_ns}
    return run_step(ws, step, ref.video_id, inputs, lambda: _IMPL[step](ws, ref, cfg), upstream)


def run_video(ws: Workspace, ref: VideoRef, profile: Profile, steps: list[str] | None = None) -> list[StepRecord]:
    """Steps on one video, in order (default: all; the Dagster assets run the same functions). lip_sync
    needs its scorer: the trained sync expert (training/sync_expert) or the official weights."""
    return [run_video_step(step, ws, ref, profile) for step in (steps or STEPS)]


def first_failure(ws: Workspace, video_id: str) -> StepRecord | None:
    """The earliest step that rejected (or failed on) this video; None when every step is ok.

    Raises RuntimeError when a step has not run yet: the manifest never guesses about missing work.
    """
    for step in STEPS:
        rec = ws.load(step, video_id)
        if rec is None:
            raise RuntimeError(f"curation step {step} has not run for video {video_id}")
        if not rec.ok:
            return rec
    return None


def build_manifest(ws: Workspace, refs: list[VideoRef], profile: Profile) -> tuple[pd.DataFrame, dict]:
    """The curated manifest: every candidate clip of every video, kept or not, plus one row per video
    rejected before the clip stage, each with its reasons. Returns (table, summary)."""
    from kling.curate.clips import manifest_table
    from kling.curate.filters import rejected_video_row

    cfg_hash = config_hash({s: step_config_hash(profile, s) for s in STEPS})
    parts: list[pd.DataFrame] = []
    for ref in refs:
        failure = first_failure(ws, ref.video_id)
        if failure is None:
            from kling.curate.lipsync import apply_decisions

            rows = pd.read_parquet(ws.output("quality", ref.video_id, ".parquet"))
            parts.append(apply_decisions(rows, pd.read_parquet(ws.output("lip_sync", ref.video_id, ".parquet"))))
        else:
            row = rejected_video_row(ref.video_id, failure.reason, failure.detail or "", str(ref.path), cfg_hash)
            parts.append(pd.DataFrame([row]))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["clip_id", "video_id", "kept"])
    table = manifest_table(df, config_hash=cfg_hash)
    out = table.to_pandas()
    reasons: dict[str, int] = {}
    for rs in out["reject_reasons"]:
        for r in rs:
            reasons[r] = reasons.get(r, 0) + 1
    summary = {
        "videos": len(refs),
        "clips": int((out["shot"].notna()).sum()),
        "kept": int(out["kept"].sum()),
        "rejected": int((~out["kept"]).sum()),
        "rejections_by_reason": dict(sorted(reasons.items())),
        "kept_seconds": round(float((out["end_s"] - out["start_s"])[out["kept"]].sum()), 2),
        "config_hash": cfg_hash,
    }
    return out, summary


MANIFEST_NAME = "curated_clips.parquet"  # in the workspace root


def manifest_path(ws: Workspace) -> Path:
    return ws.root / MANIFEST_NAME


def write_manifest(ws: Workspace, refs: list[VideoRef], profile: Profile) -> tuple[Path, pd.DataFrame, dict]:
    """Build the curated manifest (build_manifest) and write it atomically; returns (path, table, summary)."""
    table, summary = build_manifest(ws, refs, profile)
    path = write_parquet_atomic(table, manifest_path(ws), {"summary": summary, "profile": profile.name})
    return path, table, summary
