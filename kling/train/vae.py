"""Training the tiny video VAE (diffusers' AutoencoderKLWan at the registry's `tiny` size) on the shards.

Short random sub-clips (1 + 4k frames: the causal VAE's unit) of the shard windows, chained across consecutive
windows when the clips are longer than a window (so that it decodes windows stitched in latent space); loss = L1 +
MSE on pixels, weighted up on the mouth box, + a small KL. Seeded per step (resuming replays the same batches),
checkpoints in safetensors with the optimiser state, loss curve in Parquet. At the end the per-channel
latent mean and std over the shards go into the VAE's config (latents_mean / latents_std), as Wan's VAE
carries them, so the transformer sees unit-scale latents.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from kling.atomic import atomic_write_json
from kling.models.checkpoint import load_training_state, save_checkpoint
from kling.models.registry import get_size
from kling.models.vae import build_vae, load_vae, to_video
from kling.train.avatar_shards import read_shards, require_samples, split_hash
from kling.train.runs import LATEST, latest_step, point_latest, recipe_config, recipe_dir, write_loss_curve

log = logging.getLogger(__name__)

TRAINER_VERSION = 1


@dataclasses.dataclass(frozen=True)
class VaeTrainConfig:
    size: str = "tiny"
    steps: int = 300
    batch: int = 2
    clip_frames: int = 5
    lr: float = 1e-3
    kl_weight: float = 1e-6
    mouth_weight: float = 2.0
    seed: int = 0
    checkpoint_every: int = 100
    threads: int = 2


def mouth_masks(mouth: np.ndarray, side: int, pad: float = 2.0) -> torch.Tensor:
    """(T, 20, 2) mouth landmarks in window pixels -> (T, side, side) 0/1 box masks."""
    m = torch.zeros(len(mouth), side, side)
    for t, pts in enumerate(mouth):
        x0, y0 = np.floor(pts.min(0) - pad).astype(int).clip(0, side)
        x1, y1 = np.ceil(pts.max(0) + pad).astype(int).clip(0, side)
        m[t, y0:y1, x0:x1] = 1.0
    return m


def chained_windows(samples: list[dict], frames: int) -> list[dict]:
    """Samples of at least `frames` frames: each shard window chained with the windows of its clip that start on
    its last frame under the same face window. A causal VAE decodes streams longer than its training clips
    badly (trained on the model's 9-frame windows, it reconstructed held-out 33-frame streams with 3x the error of
    the same frames decoded window by window: benchmarks/vae_stream.py), and windows stitched in latent space are
    such streams."""
    if all(len(s["frames"]) >= frames for s in samples):
        return samples
    by_start = {(s["meta"]["clip_id"], s["meta"]["start_frame"]): s for s in samples}
    out = []
    for s in samples:
        chain = [s]
        while 1 + sum(len(c["frames"]) - 1 for c in chain) < frames:
            last = chain[-1]
            nxt = by_start.get((last["meta"]["clip_id"], last["meta"]["start_frame"] + len(last["frames"]) - 1))
            if nxt is None or nxt["meta"]["window"] != last["meta"]["window"]:
                break
            chain.append(nxt)
        else:
            out.append({"meta": s["meta"], **{k: np.concatenate([chain[0][k]] + [c[k][1:] for c in chain[1:]])
                                              for k in ("frames", "mouth")}})
    if not out:
        raise ValueError(f"no run of shard windows spans {frames} frames: lower the VAE's clip_frames or write "
                         "windows with a stride that divides the window's length - 1")
    return out


def _batch(samples: list[dict], rng: random.Random, cfg: VaeTrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    videos, masks = [], []
    for _ in range(cfg.batch):
        s = samples[rng.randrange(len(samples))]
        start = rng.randrange(len(s["frames"]) - cfg.clip_frames + 1)
        videos.append(to_video(s["frames"][start: start + cfg.clip_frames])[0])
        masks.append(mouth_masks(s["mouth"][start: start + cfg.clip_frames], s["frames"].shape[1]))
    return torch.stack(videos), torch.stack(masks)[:, None]


@torch.no_grad()
def latent_stats(vae, samples: list[dict]) -> tuple[list[float], list[float]]:
    mus = [vae.encode(to_video(s["frames"])).latent_dist.mode() for s in samples]
    z = torch.cat([m.transpose(0, 1).flatten(1) for m in mus], dim=1)
    return z.mean(1).tolist(), z.std(1).clamp_min(1e-3).tolist()


def train_vae(shard_dir: str | Path, out_dir: str | Path, cfg: VaeTrainConfig = VaeTrainConfig(),
              progress: Callable[[int, float], None] | None = None) -> dict:
    """Train (or resume) into `out_dir/step-XXXXXX/`; the final VAE is saved in diffusers format at
    `out_dir/vae/`. Returns the final metadata."""
    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    samples = read_shards(shard_dir)
    if not samples:
        raise ValueError(f"{shard_dir}: no training samples")
    samples = chained_windows(samples, cfg.clip_frames)
    torch.manual_seed(cfg.seed)
    vae = build_vae(get_size(cfg.size))
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    history: list[dict] = []
    step = 0
    if (ck := latest_step(out_dir)) is not None:
        meta = load_training_state(ck, vae, opt)
        step, history = meta["step"], meta["history"]
        log.info("vae: resuming at step %d from %s", step, ck)
    t0 = time.perf_counter()
    vae.train()
    while step < cfg.steps:
        rng = random.Random(cfg.seed * 1_000_003 + step)
        video, mouth = _batch(samples, rng, cfg)
        posterior = vae.encode(video).latent_dist
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        recon = vae.decode(posterior.sample()).sample
        weight = 1.0 + cfg.mouth_weight * mouth
        err = recon - video
        loss = (weight * (err.abs() + err.pow(2))).mean() + cfg.kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        history.append({"step": step, "loss": loss.item(), "seconds": time.perf_counter() - t0})
        if progress:
            progress(step, history[-1]["loss"])
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(out_dir / f"step-{step:06d}", vae, None, opt,
                            {"trainer": "vae", "trainer_version": TRAINER_VERSION, "step": step,
                             "config": dataclasses.asdict(cfg), "history": history})
    vae.eval()
    mean, std = latent_stats(vae, samples)
    vae.register_to_config(latents_mean=mean, latents_std=std)
    vae.save_pretrained(str(out_dir / "vae"))
    write_loss_curve(out_dir / "loss.parquet", history)
    meta = {"trainer": "vae", "steps": step, "final_loss": history[-1]["loss"] if history else None,
            "seconds": time.perf_counter() - t0, "vae_dir": str(out_dir / "vae"), "config": dataclasses.asdict(cfg),
            "history": history}
    atomic_write_json(out_dir / LATEST, meta)
    return meta


def vae_recipe(shards: str, cfg: VaeTrainConfig) -> dict:
    """What identifies a trained VAE across machines: the shards' identity, the configuration (not the thread
    count) and the trainer's version."""
    config = recipe_config(cfg)
    return {"trainer": "vae", "trainer_version": TRAINER_VERSION, "shards": shards, "config": config}


def train_vae_run(shard_dir: str | Path, root: str | Path, cfg: VaeTrainConfig = VaeTrainConfig(),
                  progress: Callable[[int, float], None] | None = None) -> dict:
    """Train into `root/<recipe hash>/` (a finished run of the same recipe is reused, an interrupted one
    resumes) and point `root/latest.json` at it. Returns the run's metadata with its recipe and folder."""
    if get_size(cfg.size).weights:
        return official_vae_run(root)
    require_samples(shard_dir)
    recipe = vae_recipe(split_hash(shard_dir), cfg)
    out = recipe_dir(root, recipe)
    done = out / LATEST
    if done.is_file() and (out / "vae" / "config.json").is_file() and json.loads(done.read_text())["steps"] == cfg.steps:
        meta = json.loads(done.read_text()) | {"reused": True}
    else:
        meta = train_vae(shard_dir, out, cfg, progress)
    meta |= {"recipe": recipe, "dir": str(out)}
    point_latest(root, out, {"recipe": recipe})
    return meta


def official_vae_run(root: str | Path) -> dict:
    """The paper shapes encode with the official Wan 2.1 VAE, never one trained here: its folder checked (every
    file present, else WeightsUnavailable naming the fetch command) and recorded as this run."""
    from kling.models.checkpoint import check_diffusers_folder
    from kling.weights import resolve

    folder = resolve("wan21_vae").parent  # .../<repo>/vae/diffusion_pytorch_model.safetensors -> .../<repo>/vae
    check_diffusers_folder(folder, "wan21_vae")
    recipe = {"trainer": "official", "weights": "wan21_vae"}
    point_latest(root, folder.parent, {"recipe": recipe})
    return {"recipe": recipe, "dir": str(folder.parent), "reused": True, "history": []}


def trained_vae(out_dir: str | Path):
    return load_vae(Path(out_dir) / "vae")
