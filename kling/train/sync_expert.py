"""Training the sync expert (eval.sync.expert) on the curation stage's kept clips.

The expert is SyncNet's architecture trained self-supervised (in-sync lip/audio windows against shifted and
mismatched audio). Its input is each kept clip's face-track crops and the audio under them, read from the
normalised clip and its face-track table: nothing is decoded twice per clip and no frame is written out.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterator

import pandas as pd

from kling.atomic import atomic_write_json
from kling.curate.runner import Workspace
from kling.curate.sources import VideoRef
from kling.hashing import config_hash


def kept_clips(ws: Workspace, refs: list[VideoRef]) -> Iterator[tuple[str, Path, pd.DataFrame]]:
    """(clip_id, normalised video, that clip's face-track rows) for every clip the quality filters kept."""
    for ref in refs:
        rec = ws.load("quality", ref.video_id)
        if rec is None or not rec.ok:
            continue
        quality = pd.read_parquet(ws.output("quality", ref.video_id, ".parquet"))
        tracks = pd.read_parquet(ws.output("face_tracks", ref.video_id, ".parquet"))
        for row in quality[quality["kept"]].itertuples(index=False):
            sel = (tracks["track_id"] == row.track_id) & (tracks["frame"] >= row.start_frame) & (tracks["frame"] < row.end_frame)
            yield row.clip_id, ws.output("normalise", ref.video_id, ".mp4"), tracks[sel]


LATEST = "latest.json"
MIN_CLIPS = 2


class NotEnoughClips(ValueError):
    """Too few kept clips to train on (the expert contrasts clips with each other's audio)."""


def latest_checkpoint_dir(root: str | Path) -> Path | None:
    """The checkpoint folder of the last training run under `root`, if any."""
    pointer = Path(root) / LATEST
    return Path(json.loads(pointer.read_text())["dir"]) if pointer.exists() else None


def train_sync_expert(ws: Workspace, refs: list[VideoRef], root: str | Path, config=None) -> dict:
    """Train the expert on every kept clip into `root/<hash of clips and config>/` (resuming a run with the
    same clips and config, so a re-run does no work) and point `root/latest.json` at it. Returns the last
    checkpoint's metadata with the clip ids and folder. Deterministic for the same clips and config."""
    from eval.sync.expert import TrainConfig, clip_from_video, train_expert

    config = config or TrainConfig()
    clips, used = [], []
    for clip_id, video, tracks in kept_clips(ws, refs):
        clip = clip_from_video(video, tracks=tracks, clip_id=clip_id)
        if clip is not None:
            clips.append(clip)
            used.append(clip_id)
    if len(clips) < MIN_CLIPS:
        raise NotEnoughClips(f"{len(clips)} usable kept clips; the sync expert needs at least {MIN_CLIPS}")
    out_dir = Path(root) / config_hash({"clips": used, "config": config})
    meta = train_expert(clips, out_dir, config)
    atomic_write_json(Path(root) / LATEST, {"dir": str(out_dir)})
    return {**meta, "clips": used, "dir": str(out_dir), "config": dataclasses.asdict(config)}
