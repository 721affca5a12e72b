"""Training the sync expert (kling.perception.sync.expert) on the curation stage's kept clips.

The expert is SyncNet's architecture trained self-supervised. For a run of ``seg`` consecutive lip windows
of one clip, the candidates are the audio windows at offsets -15..+15 of the same clip (the true one at
offset 0; the others are the "shifted" negatives) and of another clip at the same positions ("mismatched"
negatives). The loss is a softmax cross-entropy over -distance * scale, so the distance curve the metric
reads is what is trained. Seeds fix the data order and initialisation; checkpoints (state dict +
optimiser + JSON metadata) are written every ``checkpoint_every`` steps, and training resumes from the
latest one. Its input is each kept clip's face-track crops and the audio under them, read from the
normalised clip and its face-track table: nothing is decoded twice per clip and no frame is written out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from kling.atomic import atomic_write_bytes, atomic_write_json
from kling.clock import FPS, MFCC_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME
from kling.curate.runner import Workspace
from kling.curate.sources import VideoRef
from kling.hashing import config_hash
from kling.perception.sync.audio import compute_mfcc, frames_covered, to_int16_scale
from kling.perception.sync.expert import CHECKPOINT, EXPERT_CONFIG, EXPERT_NAME, LATEST, META, STATE, prep_crops
from kling.perception.sync.model import LIP_FRAMES, MFCC_WINDOW, SyncNet, SyncNetConfig
from kling.perception.sync.score import EXPERT_PROTOCOL_VERSION, VSHIFT
from kling.train.runs import set_cosine_lr

log = logging.getLogger(__name__)

TRAINER_VERSION = 1  # bump when a change to this file changes the weights a recipe trains to
@dataclass
class ExpertClip:
    """One training clip: expert-size frames (RGB) and its MFCC; n usable windows."""

    id: str
    frames: np.ndarray  # (n, s, s, 3) uint8 RGB
    mfcc: np.ndarray  # (13, M)

    @property
    def n_windows(self) -> int:
        # lip windows need 5 frames; audio window i needs MFCC columns 4i..4i+19
        return max(0, min(len(self.frames) - LIP_FRAMES + 1, (self.mfcc.shape[1] - MFCC_WINDOW) // MFCC_PER_FRAME + 1))

    @staticmethod
    def from_arrays(clip_id: str, crops224: np.ndarray, audio: np.ndarray, lip_size: int = EXPERT_CONFIG.lip_size) -> "ExpertClip":
        n = min(len(crops224), frames_covered(len(audio)))
        return ExpertClip(clip_id, prep_crops(crops224[:n], lip_size),
                          compute_mfcc(to_int16_scale(audio[: n * SAMPLES_PER_FRAME])))


@dataclass
class TrainConfig:
    steps: int = 400
    seg: int = 24  # consecutive lip windows per segment
    segments: int = 4  # segments (clips) per step
    lr: float = 2e-3
    seed: int = 0
    checkpoint_every: int = 100
    threads: int | None = None
    arch: SyncNetConfig = field(default_factory=lambda: EXPERT_CONFIG)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["arch"] = self.arch.to_dict()
        return d


class _Trainee(torch.nn.Module):
    def __init__(self, arch: SyncNetConfig):
        super().__init__()
        self.net = SyncNet(arch)
        self.log_scale = torch.nn.Parameter(torch.tensor(1.0))  # softmax temperature on distances


def _segment(clip: ExpertClip, start: int, seg: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lip windows start..start+seg-1 (N, 3, 5, s, s) BGR float, and audio windows start-15..start+seg+14
    (zero-padded outside the clip, as the metric pads features) as (M, 1, 13, 20) plus a validity mask."""
    fr = torch.from_numpy(clip.frames[start : start + seg + LIP_FRAMES - 1][..., ::-1].copy()).float()
    lip = fr.unfold(0, LIP_FRAMES, 1).permute(0, 3, 4, 1, 2)  # (seg, 3, 5, s, s)
    cc = torch.from_numpy(clip.mfcc)
    idx = torch.arange(start - VSHIFT, start + seg + VSHIFT)
    valid = (idx >= 0) & (idx < clip.n_windows)
    cols = (idx.clamp(0, clip.n_windows - 1) * MFCC_PER_FRAME)[:, None] + torch.arange(MFCC_WINDOW)
    aud = cc[:, cols].permute(1, 0, 2).unsqueeze(1)  # (seg+30, 1, 13, 20)
    return lip, aud, valid


def _loss(model: _Trainee, batch: list[tuple], seg: int) -> tuple[torch.Tensor, float]:
    lips = torch.cat([b[0] for b in batch])
    auds = torch.cat([b[1] for b in batch])
    lf = model.net.forward_lip(lips).view(len(batch), seg, -1)
    af = model.net.forward_aud(auds).view(len(batch), seg + 2 * VSHIFT, -1)
    win = 2 * VSHIFT + 1
    losses, correct = [], 0
    for k, (_, _, valid) in enumerate(batch):
        own = af[k].unfold(0, win, 1).permute(0, 2, 1)  # (seg, 31, d): offsets -15..15 around each window
        other = af[(k + 1) % len(batch)].unfold(0, win, 1).permute(0, 2, 1)  # mismatched clip, same positions
        cand = torch.cat([own, other], 1)
        d = torch.linalg.vector_norm(lf[k][:, None, :] - cand + 1e-6, dim=-1)  # pairwise_distance
        mask = torch.cat([valid.unfold(0, win, 1), batch[(k + 1) % len(batch)][2].unfold(0, win, 1)], 1)
        logits = (-d * model.log_scale.exp()).masked_fill(~mask, -1e4)
        target = torch.full((seg,), VSHIFT, dtype=torch.long)
        losses.append(F.cross_entropy(logits, target))
        correct += int((logits.argmax(1) == VSHIFT).sum())
    return torch.stack(losses).mean(), correct / (seg * len(batch))


def _content_hash(clip: ExpertClip) -> str:
    h = hashlib.sha256(np.ascontiguousarray(clip.frames).tobytes())
    h.update(np.ascontiguousarray(clip.mfcc).tobytes())
    return "arrays:" + h.hexdigest()


def _to_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _save(out: Path, model: _Trainee, opt, step: int, cfg: TrainConfig, history: list, clip_ids: list[str],
          recipe: dict) -> None:
    # Saved through a buffer: torch.save names the zip's root folder after the file, and the temporary
    # file's random name would make identical weights hash differently (the sha256 identifies the backbone).
    atomic_write_bytes(out / CHECKPOINT, _to_bytes(model.net.state_dict()))
    atomic_write_bytes(out / STATE, _to_bytes({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                                               "rng": torch.get_rng_state()}))
    atomic_write_json(out / META, {"name": EXPERT_NAME, "step": step, "train": cfg.to_dict(), "arch": cfg.arch.to_dict(),
                                   "protocol_version": EXPERT_PROTOCOL_VERSION, "clips": clip_ids, "history": history,
                                   "recipe": recipe, "recipe_hash": config_hash(recipe)})


def train_expert(clips: list[ExpertClip], out_dir: str | Path, cfg: TrainConfig = TrainConfig(),
                 max_new_steps: int | None = None, recipe: dict | None = None) -> dict:
    """Train (or resume) the sync expert into out_dir; returns the metadata of the last checkpoint.
    `max_new_steps` stops this call early (a checkpoint is written there); calling again resumes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clips = [c for c in clips if c.n_windows >= cfg.seg]
    if len(clips) < 2:
        raise ValueError(f"need at least 2 clips with >= {cfg.seg + LIP_FRAMES - 1} frames of face and audio")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = _Trainee(cfg.arch)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, history = 0, []
    if (out / STATE).exists() and (out / META).exists():
        st = torch.load(out / STATE, map_location="cpu", weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        torch.set_rng_state(st["rng"])
        step = int(st["step"])
        history = json.loads((out / META).read_text()).get("history", [])
        log.info("sync expert: resuming at step %d", step)
    ids = [c.id for c in clips]
    # Without a recipe from curation, the data is named by its content (a caller's own arrays).
    recipe = recipe or expert_recipe({c.id: _content_hash(c) for c in clips}, cfg)
    model.train()
    t0 = time.perf_counter()
    stop = cfg.steps if max_new_steps is None else min(cfg.steps, step + max_new_steps)
    while step < stop:
        rng = np.random.default_rng([cfg.seed, step])  # data order depends on (seed, step) only: resumable
        pick = rng.choice(len(clips), size=cfg.segments, replace=len(clips) < cfg.segments)
        batch = [_segment(clips[i], int(rng.integers(0, clips[i].n_windows - cfg.seg + 1)), cfg.seg) for i in pick]
        set_cosine_lr(opt, cfg.lr, step, cfg.steps)
        loss, acc = _loss(model, batch, cfg.seg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0 or step == cfg.steps:
            history.append({"step": step, "loss": round(loss.item(), 4), "acc": round(acc, 3),
                            "seconds": round(time.perf_counter() - t0, 1)})
            log.info("sync expert step %d: loss %.3f offset-acc %.2f", step, loss.item(), acc)
        if step % cfg.checkpoint_every == 0 or step == stop:
            _save(out, model, opt, step, cfg, history, ids, recipe)
    return json.loads((out / META).read_text())


def clip_from_video(video: str | Path, tracks=None, clip_id: str | None = None,
                    lip_size: int = EXPERT_CONFIG.lip_size) -> ExpertClip | None:
    """Training clip of a curated video: the longest face track's reference crops (streamed) + its audio.
    `tracks`: the clip's face-track table (computed with kling.perception.faces.tracks when None).
    None when the video has no face track or no audio."""
    from kling.perception.sync.crop import TrackCropper
    from kling.perception.sync.pipeline import _default_face_tracks, tracks_from_table
    from kling.io.audio import read_audio
    from kling.io.decode import iter_frames

    video = Path(video)
    boxes = tracks_from_table(_default_face_tracks(video) if tracks is None else tracks)
    audio = read_audio(video, sample_rate=SAMPLE_RATE)
    if not boxes or audio is None:
        return None
    track = max(boxes, key=lambda b: len(b.frames))
    cropper = TrackCropper(track)
    parts = [prep_crops(cropper.crops(c.frames, c.start), lip_size) for c in iter_frames(video, fps=FPS, chunk_size=32)]
    frames = np.concatenate(parts)
    seg = audio[track.start * SAMPLES_PER_FRAME : track.end * SAMPLES_PER_FRAME]
    n = min(len(frames), frames_covered(len(seg)))
    return ExpertClip(clip_id or video.stem, frames[:n], compute_mfcc(to_int16_scale(seg[: n * SAMPLES_PER_FRAME])))

def kept_clips(ws: Workspace, refs: list[VideoRef]) -> Iterator[tuple[str, str, Path, pd.DataFrame]]:
    """(clip_id, video_id, normalised video, that clip's face-track rows) for every clip the quality filters kept."""
    for ref in refs:
        rec = ws.load("quality", ref.video_id)
        if rec is None or not rec.ok:
            continue
        quality = pd.read_parquet(ws.output("quality", ref.video_id, ".parquet"))
        tracks = pd.read_parquet(ws.output("face_tracks", ref.video_id, ".parquet"))
        for row in quality[quality["kept"]].itertuples(index=False):
            sel = (tracks["track_id"] == row.track_id) & (tracks["frame"] >= row.start_frame) & (tracks["frame"] < row.end_frame)
            yield row.clip_id, ref.video_id, ws.output("normalise", ref.video_id, ".mp4"), tracks[sel]


MIN_CLIPS = 2


class NotEnoughClips(ValueError):
    """Too few kept clips to train on (the expert contrasts clips with each other's audio)."""


def expert_recipe(clip_sources: dict[str, str], cfg: TrainConfig) -> dict:
    """What identifies a trained expert across machines: its training data (each clip id with the identity of
    its source video, kling.curate.sources.source_identities), its configuration and the trainer's version.
    Not its weight bytes: the same recipe trains to slightly different weights on CPUs with other vector
    units (float reductions in another order), and that difference is the machine's, not the model's. The
    regression gate compares numbers of one recipe within tolerances measured across emulated CPUs
    (benchmarks/bench_cpu_spread.py); a changed recipe makes them incomparable."""
    config = cfg.to_dict()
    config.pop("threads", None)  # how many cores train it is the machine's choice
    return {"trainer": "sync_expert", "trainer_version": TRAINER_VERSION, "protocol_version": EXPERT_PROTOCOL_VERSION,
            "data": config_hash(dict(sorted(clip_sources.items()))), "clips": len(clip_sources), "config": config}


def train_sync_expert(ws: Workspace, refs: list[VideoRef], root: str | Path, config=None,
                      sources: dict[str, str] | None = None) -> dict:
    """Train the expert on every kept clip into `root/<hash of clips and config>/` (resuming a run with the
    same clips and config, so a re-run does no work) and point `root/latest.json` at it. `sources`: the
    identity of each source video (video_id -> kling.curate.sources.source_identities), recorded in the
    checkpoint's recipe; by default the video ids alone. Returns the last checkpoint's metadata with the
    clip ids and folder. Deterministic for the same clips and config on one machine."""
    config = config or TrainConfig()
    clips, used, clip_sources = [], [], {}
    for clip_id, video_id, video, tracks in kept_clips(ws, refs):
        clip = clip_from_video(video, tracks=tracks, clip_id=clip_id)
        if clip is not None:
            clips.append(clip)
            used.append(clip_id)
            clip_sources[clip_id] = (sources or {}).get(video_id, video_id)
    if len(clips) < MIN_CLIPS:
        raise NotEnoughClips(f"{len(clips)} usable kept clips; the sync expert needs at least {MIN_CLIPS}")
    out_dir = Path(root) / config_hash({"clips": used, "config": config})
    meta = train_expert(clips, out_dir, config, recipe=expert_recipe(clip_sources, config))
    atomic_write_json(Path(root) / LATEST, {"dir": str(out_dir)})
    return {**meta, "clips": used, "dir": str(out_dir), "config": dataclasses.asdict(config)}
