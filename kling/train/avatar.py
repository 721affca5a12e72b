"""Training the avatar model (kling.models.avatar) on the shards with a frozen VAE.

Per sample and step: a random conditioning mask (none / first / first_last / context:K) over the window's
own frames, a reference frame drawn from the same window (AvatarModel.image_tokens), the window's
audio (dropped to the learned null audio with p_audio_drop) and its text (dropped to "" with
p_text_drop): the dropouts train classifier-free guidance. Loss: flow matching (x_t = (1 - s) x0 + s e,
target e - x0, timestep 1000 s with s logit-normal and shifted, as Wan trains), weighted by
1 + mouth_weight on latent pixels covering the mouth box of any frame the latent frame spans; for `tiny`, plus
lip_weight x the audio encoder's lip head error (mouth opening per frame from the landmarks, `lip_loss`). With
`sides`, each step's batch is at one of them (the frames area-resized): Wan's rotary positions take any size, so
one model then serves the cascade's low-resolution blueprint and its full-resolution sub-clips.

Seeded per step (a resumed run replays the same batches); checkpoints in safetensors (model, EMA,
optimiser) + meta.json; the loss curve in Parquet. `tiny` trains every weight; the paper shapes train only
the added audio layers on the frozen official backbone and encoders (AvatarModel.trainable_parameters), and
their checkpoints hold only those (AvatarModel.checkpoint_keys).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from kling.atomic import atomic_write_json
from kling.clock import SAMPLES_PER_FRAME
from kling.hashing import config_hash
from kling.models.audio_attention import latent_frame_span
from kling.models.avatar import AvatarModel
from kling.models.checkpoint import load_tensors, load_training_state, new_avatar_model, save_checkpoint
from kling.models.conditioning import known_frames, mask_channels, masked_video, random_mask_kind
from kling.models.vae import encode, load_vae, to_video
from kling.train.avatar_shards import read_shards, require_samples, split_hash
from kling.train.runs import latest_step, point_latest, recipe_config, recipe_dir, write_loss_curve
from kling.train.vae import mouth_masks

log = logging.getLogger(__name__)

TRAINER_VERSION = 2  # 2: the audio layers read the block's own state, start live, and the lip head trains
LATEST = "latest.json"


@dataclasses.dataclass(frozen=True)
class AvatarTrainConfig:
    size: str = "tiny"
    steps: int = 600
    batch: int = 2
    lr: float = 5e-4
    warmup: int = 20
    weight_decay: float = 0.0
    mouth_weight: float = 3.0
    lip_weight: float = 1.0  # the audio encoder's lip head (tiny): mouth opening per frame from its audio token
    p_audio_drop: float = 0.1
    p_text_drop: float = 0.1
    shift: float = 3.0  # timestep shift of the flow (Wan uses 3-5)
    ema_decay: float = 0.99
    seed: int = 0
    checkpoint_every: int = 200
    threads: int = 2
    sides: tuple[int, ...] = ()  # frame sides drawn per step (empty: the shards' own): a cascade whose blueprint
    #                              is at a lower side (CascadeConfig.blueprint_side) needs the model trained at it


def sample_sigmas(n: int, gen: torch.Generator, shift: float) -> torch.Tensor:
    """Logit-normal noise levels, shifted towards noise as Wan's flow schedule is."""
    s = torch.sigmoid(torch.randn(n, generator=gen))
    return shift * s / (1 + (shift - 1) * s)


def latent_mouth_weight(mouth: torch.Tensor, stride: int, spatial: int) -> torch.Tensor:
    """(B, 1, T, H, W) pixel mouth masks -> (B, 1, F_lat, h, w): a latent pixel counts when any frame it spans
    has mouth in its area."""
    b, _, t, h, w = mouth.shape
    n_lat = (t - 1) // stride + 1
    frames = []
    for k in range(n_lat):
        a, e = latent_frame_span(k, stride)
        frames.append(mouth[:, :, a: e + 1].amax(dim=2))
    lat = torch.stack(frames, dim=2)
    return (F.avg_pool3d(lat, (1, spatial, spatial)) > 0).float()


class LatentCache:
    """Frozen-VAE encodings, computed once per (sample, what): the clip, each mask kind's condition, each
    reference frame; and each reference frame's tokens for the model (`reference_tokens`)."""

    def __init__(self, vae, samples: list[dict]):
        self.vae, self.samples, self.cache = vae, samples, {}

    @torch.no_grad()
    def get(self, i: int, what: str) -> torch.Tensor:
        key = (i, what)
        if key not in self.cache:
            video = to_video(self.samples[i]["frames"])
            if what == "x0":
                out = encode(self.vae, video)
            elif what.startswith("ref:"):
                out = encode(self.vae, video[:, :, int(what[4:]): int(what[4:]) + 1])
            else:  # a mask kind
                out = encode(self.vae, masked_video(video, known_frames(what, video.shape[2])))
            self.cache[key] = out[0]
        return self.cache[key]

    @torch.no_grad()
    def reference_tokens(self, model: AvatarModel, i: int, k: int) -> torch.Tensor | None:
        """Frame k of sample i as the model's reference image tokens (1, tokens, dim), or None
        (AvatarModel.image_tokens; the VAE encodes the frame only for a model that reads latent patches)."""
        key = (i, f"tokens:{k}")
        if key not in self.cache:
            latent = self.get(i, f"ref:{k}")[None] if model.size.image["kind"] == "vae_patches" else None
            self.cache[key] = model.image_tokens(self.samples[i]["frames"][k: k + 1], latent)
        return self.cache[key]


def samples_at_side(samples: list[dict], side: int) -> list[dict]:
    """The samples with their frames area-resized to `side` and their mouth landmarks scaled with them (the
    shards' own objects when already at that side)."""
    out = []
    for s in samples:
        own = s["frames"].shape[1]
        if own == side:
            out.append(s)
            continue
        frames = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA if side < own else cv2.INTER_CUBIC)
                           for f in s["frames"]])
        out.append(s | {"frames": frames, "mouth": (s["mouth"] * (side / own)).astype(s["mouth"].dtype)})
    return out


def _audio(sample: dict) -> torch.Tensor:
    return torch.from_numpy(sample["audio"]).float()


def mouth_opening(mouth: np.ndarray) -> np.ndarray:
    """(T, 20, 2) dlib mouth landmarks 48-67 -> (T,) inner-lip gap over mouth width (0 closed, ~0.4 wide open)."""
    gap = mouth[:, 17:20, 1].mean(1) - mouth[:, 13:16, 1].mean(1)  # lower inner lip (65-67) - upper (61-63)
    width = np.linalg.norm(mouth[:, 6] - mouth[:, 0], axis=-1)  # corners 54 - 48
    return (np.clip(gap, 0, None) / np.maximum(width, 1e-3)).astype(np.float32)


def training_batch(samples: list[dict], cache: LatentCache, model: AvatarModel, rng: random.Random,
                   gen: torch.Generator, cfg: AvatarTrainConfig) -> dict:
    size = model.size
    idx = [rng.randrange(len(samples)) for _ in range(cfg.batch)]
    x0, cond, refs, texts, audio, mouth, opening = [], [], [], [], [], [], []
    for i in idx:
        s = samples[i]
        n = len(s["frames"])
        kind = random_mask_kind(rng, n)
        lat = cache.get(i, "x0")
        c = cache.get(i, kind)
        m = mask_channels(known_frames(kind, n), size.temporal_stride, lat.shape[-2], lat.shape[-1])
        x0.append(lat)
        cond.append(torch.cat([m, c], dim=0))
        refs.append(cache.reference_tokens(model, i, rng.randrange(n)))
        texts.append("" if rng.random() < cfg.p_text_drop else s["meta"]["text"])
        audio.append(_audio(s))
        mouth.append(mouth_masks(s["mouth"], s["frames"].shape[1]))
        opening.append(torch.from_numpy(mouth_opening(s["mouth"])))
    drop = torch.tensor([rng.random() < cfg.p_audio_drop for _ in idx])
    image = None if refs[0] is None else torch.cat(refs)
    return {"x0": torch.stack(x0), "condition": torch.stack(cond), "image": image, "texts": texts,
            "audio": torch.stack(audio), "audio_drop": drop, "mouth": torch.stack(mouth)[:, None],
            "opening": torch.stack(opening),
            "noise": torch.randn(torch.stack(x0).shape, generator=gen), "sigma": sample_sigmas(len(idx), gen, cfg.shift)}


def flow_loss(model: AvatarModel, batch: dict, cfg: AvatarTrainConfig) -> torch.Tensor:
    x0, noise, sigma = batch["x0"], batch["noise"], batch["sigma"]
    s = sigma.view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * x0 + s * noise
    n_frames = batch["audio"].shape[1] // SAMPLES_PER_FRAME
    audio = model.audio_tokens(batch["audio"], n_frames, len(x0), drop=batch["audio_drop"])
    text = model.text_embeddings(batch["texts"])
    pred = model(noisy, sigma * 1000.0, batch["condition"], text, batch["image"], audio)
    weight = 1.0 + cfg.mouth_weight * latent_mouth_weight(batch["mouth"], model.size.temporal_stride, model.size.spatial_stride)
    loss = (weight * (pred.float() - (noise - x0)).pow(2)).mean()
    if model.lip_head is not None and cfg.lip_weight:
        loss = loss + cfg.lip_weight * lip_loss(model, batch["audio"], batch["opening"])
    return loss


def lip_loss(model: AvatarModel, audio: torch.Tensor, opening: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the lip head's mouth opening per frame (x5: about unit scale) from the audio tokens
    (before any dropout). The diffusion loss alone left the audio unused: its mouth is a few latent pixels whose
    share of the loss is small (benchmarks/avatar_audio_probe.py)."""
    tokens = model.audio_encoder(audio, opening.shape[1])
    return (model.lip_head(tokens)[..., 0] - 5.0 * opening).pow(2).mean()


@torch.no_grad()
def audio_reliance(model: AvatarModel, vae, samples: list[dict], sigmas: tuple[float, ...] = (0.3, 0.6, 0.9),
                   seed: int = 0) -> dict:
    """How much the model's prediction of the mouth depends on its audio: the flow loss on the latent mouth box of
    each window (first frame known, its own caption and reference) with the window's own audio, with another
    window's audio and with the null audio, at the same noise and noise levels. `gain` = how much higher the loss is
    with another window's audio (0: the audio is ignored). `lip_head_corr`: the correlation of the audio encoder's
    lip head with the measured mouth opening, frame by frame (tiny). Meant for held-out windows
    (kling.train.avatar_shards.held_out_windows)."""
    if len(samples) < 2:
        raise ValueError("audio reliance needs at least two windows (one lends the other its audio)")
    model.eval()
    cache, size = LatentCache(vae, samples), model.size
    gen = torch.Generator().manual_seed(seed)
    losses: dict[str, list[float]] = {"own": [], "other": [], "null": []}
    for sigma in sigmas:
        for i, s in enumerate(samples):
            n = len(s["frames"])
            x0 = cache.get(i, "x0")[None]
            known = mask_channels(known_frames("first", n), size.temporal_stride, x0.shape[-2], x0.shape[-1])
            condition = torch.cat([known, cache.get(i, "first")])[None]
            image = cache.reference_tokens(model, i, 0)
            text = model.text_embeddings([s["meta"]["text"]])
            noise = torch.randn(x0.shape, generator=gen)
            mouth = latent_mouth_weight(mouth_masks(s["mouth"], s["frames"].shape[1])[None, None], size.temporal_stride,
                                        size.spatial_stride)
            other = samples[(i + len(samples) // 2) % len(samples)]
            for kind, audio in (("own", _audio(s)[None]), ("other", _audio(other)[None]), ("null", None)):
                pred = model((1 - sigma) * x0 + sigma * noise, torch.tensor([sigma * 1000.0]), condition, text, image,
                             model.audio_tokens(audio, n, 1))
                err = (pred.float() - (noise - x0)).pow(2).mean(dim=1, keepdim=True)
                losses[kind].append(float((err * mouth).sum() / mouth.sum().clamp_min(1.0)))
    mean = {k: float(sum(v) / len(v)) for k, v in losses.items()}
    corr = None
    if model.lip_head is not None:
        pred = torch.cat([model.lip_head(model.audio_encoder(_audio(s)[None], len(s["frames"])))[0, :, 0] for s in samples])
        truth = torch.from_numpy(np.concatenate([mouth_opening(s["mouth"]) for s in samples]))
        corr = float(torch.corrcoef(torch.stack([pred.float(), truth]))[0, 1])
    return {"mouth_loss": mean, "gain": mean["other"] / mean["own"] - 1.0, "lip_head_corr": corr,
            "windows": len(samples), "sigmas": list(sigmas)}


def _ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for k, v in model.checkpoint_state().items():
            if v.dtype.is_floating_point:
                ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
            else:
                ema[k].copy_(v)


def build_model(cfg: AvatarTrainConfig) -> AvatarModel:
    """`tiny` from scratch (seeded); a paper shape on its official Wan transformer and encoders (WeightsUnavailable
    with the fetch command when one is missing: never a random backbone), its added audio layers seeded."""
    torch.manual_seed(cfg.seed)
    return new_avatar_model(cfg.size)


def train_avatar(shard_dir: str | Path, vae_dir: str | Path, out_dir: str | Path,
                 cfg: AvatarTrainConfig = AvatarTrainConfig(),
                 progress: Callable[[int, float], None] | None = None) -> dict:
    """Train (or resume) into `out_dir/step-XXXXXX/`; the trained VAE is copied beside the checkpoints
    (`out_dir/vae/`) so a checkpoint folder generates on its own. Returns the final metadata."""
    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    samples = read_shards(shard_dir)
    if not samples:
        raise ValueError(f"{shard_dir}: no training samples")
    vae = load_vae(vae_dir).eval().requires_grad_(False)
    if not (out_dir / "vae").exists():
        shutil.copytree(vae_dir, out_dir / "vae")
    model = build_model(cfg)
    params = model.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = {k: v.detach().clone() for k, v in model.checkpoint_state().items()}
    step, history = 0, []
    if (ck := latest_step(out_dir)) is not None:
        meta = load_training_state(ck, model, opt)
        ema = load_tensors(ck / "ema.safetensors")
        step, history = meta["step"], meta["history"]
        log.info("avatar: resuming at step %d from %s", step, ck)
    sides = tuple(int(x) for x in cfg.sides)
    by_side = {}  # side -> (the samples at it, their latents); no sides: the shards' own samples and `cache`
    for side in sides:
        part = samples_at_side(samples, side)
        by_side[side] = (part, LatentCache(vae, part))
    cache = LatentCache(vae, samples)
    data_hash = json.loads((Path(shard_dir) / "split.json").read_text())["hash"]
    recipe = {"trainer": "avatar", "trainer_version": TRAINER_VERSION, "config": dataclasses.asdict(cfg),
              "shards": data_hash, "size": cfg.size}
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    model.train()
    while step < cfg.steps:
        rng = random.Random(cfg.seed * 1_000_003 + step)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        part, part_cache = by_side[rng.choice(sides)] if sides else (samples, cache)  # one side per batch
        batch = training_batch(part, part_cache, model, rng, gen, cfg)
        loss = flow_loss(model, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for g in opt.param_groups:  # linear warm-up, a function of the step alone (resumes exactly)
            g["lr"] = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
        opt.step()
        _ema_update(ema, model, cfg.ema_decay)
        step += 1
        history.append({"step": step, "loss": loss.item(), "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0})
        if progress:
            progress(step, history[-1]["loss"])
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            folder = save_checkpoint(out_dir / f"step-{step:06d}", model, ema, opt,
                                     {**recipe, "step": step, "history": history, "recipe_hash": config_hash(recipe),
                                      "vae_dir": "../vae"})
            atomic_write_json(out_dir / LATEST, {"dir": folder.name, "step": step})
    write_loss_curve(out_dir / "loss.parquet", history)
    final = latest_step(out_dir)
    return {**recipe, "step": step, "dir": str(final), "history": history, "final_loss": history[-1]["loss"] if history else None,
            "mean_loss_last_50": float(sum(h["loss"] for h in history[-50:]) / max(1, len(history[-50:]))),
            "seconds": history[-1]["seconds"] if history else 0.0}


def initial_checkpoint(vae_dir: str | Path, out_dir: str | Path, cfg: AvatarTrainConfig = AvatarTrainConfig()) -> Path:
    """The same model at initialisation (step 0), saved like a trained one: the fidelity bars compare to it."""
    out_dir = Path(out_dir)
    if not (out_dir / "vae").exists():
        shutil.copytree(vae_dir, out_dir / "vae")
    model = build_model(cfg)
    recipe = {"trainer": "avatar", "trainer_version": TRAINER_VERSION, "config": dataclasses.asdict(cfg), "size": cfg.size}
    return save_checkpoint(out_dir / "step-000000", model, None, None, {**recipe, "step": 0, "history": [],
                                                                          "vae_dir": "../vae"})


def _held_out_audio(checkpoint: Path, size: str, held_out: list[dict]) -> dict:
    """audio_reliance of a checkpoint's EMA weights (what generation loads) on held-out windows."""
    path = checkpoint.parent / "held_out_audio.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    if record.get("checkpoint") != checkpoint.name or record.get("windows") != len(held_out):
        model = new_avatar_model(size)
        model.load_checkpoint_state(load_tensors(checkpoint / "ema.safetensors"))
        vae = load_vae(checkpoint.parent / "vae").eval()
        record = {"checkpoint": checkpoint.name} | audio_reliance(model, vae, held_out)
        atomic_write_json(path, record)
    return record


def avatar_recipe(shards: str, vae_recipe: dict, cfg: AvatarTrainConfig) -> dict:
    """What identifies a trained avatar model across machines: the shards, the VAE's recipe, the configuration
    (not the thread count) and the trainer's version."""
    config = recipe_config(cfg)
    return {"trainer": "avatar", "trainer_version": TRAINER_VERSION, "shards": shards,
            "vae": config_hash(vae_recipe), "config": config}


def train_avatar_run(shard_dir: str | Path, vae_run: dict, root: str | Path, cfg: AvatarTrainConfig = AvatarTrainConfig(),
                     progress: Callable[[int, float], None] | None = None, held_out: list[dict] | None = None) -> dict:
    """Train into `root/<recipe hash>/` on the VAE run `vae_run` (kling.train.vae.train_vae_run's result):
    a finished run of the same recipe is reused, an interrupted one resumes; `root/latest.json` points at it.
    With `held_out` windows, the trained (EMA) model's audio reliance on them joins the result as
    `held_out_audio` (kept in the run folder, so a reused run does not measure it again)."""
    require_samples(shard_dir)
    recipe = avatar_recipe(split_hash(shard_dir), vae_run["recipe"], cfg)
    out = recipe_dir(root, recipe)
    last = latest_step(out)
    done = json.loads((last / "meta.json").read_text()) if last is not None else {}
    if last is not None and done["step"] >= cfg.steps:
        meta = {**done, "dir": str(last), "reused": True}
    else:
        meta = train_avatar(shard_dir, Path(vae_run["dir"]) / "vae", out, cfg, progress)
    meta |= {"recipe": recipe, "run_dir": str(out)}
    if held_out and len(held_out) >= 2:
        meta["held_out_audio"] = _held_out_audio(Path(meta["dir"]), cfg.size, held_out)
    point_latest(root, out, {"recipe": recipe, "checkpoint": meta["dir"]})
    return meta
