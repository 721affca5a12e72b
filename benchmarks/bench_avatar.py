"""Speed and memory of the avatar model's tiny configuration (no pass/fail: the numbers are reported).

1. Training: seconds per step of kling.train.avatar (batch 2, 17 frames at 64 x 64, VAE latents cached as
   the trainer caches them), forward + backward + AdamW, after warm-up steps.
2. Generation: frames per second of kling.generate.avatar_pipeline (20 Euler steps, three guidance passes
   per step, VAE encode of the conditioning and decode), for one clip of --seconds of audio.
3. Peak memory of generation: the resident-set high-water mark of a fresh process that only generates
   (ru_maxrss), and its rise over the process after imports and model load.

Weights are random (a fresh tiny model and VAE): the work per step is the trained model's. On a device
(`--device cuda`) the same runs report a GPU figure (with torch.cuda.max_memory_allocated).

    python benchmarks/bench_avatar.py [--threads 2] [--steps 10] [--seconds 2] [--device cpu] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _checkpoint(root: Path) -> Path:
    import torch

    from kling.models.registry import get_size
    from kling.models.vae import build_vae
    from kling.train.avatar import AvatarTrainConfig, initial_checkpoint

    torch.manual_seed(0)
    build_vae(get_size("tiny")).save_pretrained(str(root / "vae"))
    return initial_checkpoint(root / "vae", root / "run", AvatarTrainConfig())


def _samples(n: int = 4, frames: int = 17, side: int = 64) -> list[dict]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        mouth = np.stack([np.array([[24 + j, 40 + (j % 3)] for j in range(20)], np.float32)] * frames)
        out.append({"frames": rng.integers(0, 256, (frames, side, side, 3), dtype=np.uint8),
                    "audio": rng.standard_normal(frames * 640).astype(np.float32) * 0.1,
                    "mouth": mouth, "meta": {"text": "A person talks to the camera."}})
    return out


def bench_train(threads: int, steps: int, device: str) -> dict:
    import torch

    from kling.models.vae import build_vae
    from kling.models.registry import get_size
    from kling.train.avatar import AvatarTrainConfig, LatentCache, build_model, flow_loss, training_batch

    torch.set_num_threads(threads)
    cfg = AvatarTrainConfig(batch=2, threads=threads)
    model = build_model(cfg).to(device)
    vae = build_vae(get_size("tiny")).eval().requires_grad_(False)
    samples = _samples()
    cache = LatentCache(vae, samples)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    times = []
    for step in range(steps + 3):
        rng, gen = random.Random(step), torch.Generator().manual_seed(step)
        batch = training_batch(samples, cache, model, rng, gen, cfg)  # first steps fill the latent cache
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        t0 = time.perf_counter()
        loss = flow_loss(model, batch, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - t0)
    return {"train_step_s": float(np.median(times)), "train_step_s_min": float(min(times)), "steps": steps,
            "batch": cfg.batch, "frames": 17, "side": 64, "threads": threads, "device": device}


def bench_generate(threads: int, seconds: float, device: str) -> dict:
    import torch

    from kling.generate.avatar_pipeline import AvatarPipeline, GenerateConfig, load_checkpoint

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = load_checkpoint(_checkpoint(Path(tmp)), device=device)
        pipe = AvatarPipeline(ckpt)
        image = np.full((256, 256, 3), 128, np.uint8)
        audio = (np.random.default_rng(0).standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32)
        before = _peak_mb()
        t0 = time.perf_counter()
        frames, info = pipe(image, audio, prompt="a person talks", config=GenerateConfig(steps=20),
                            window_box=(88, 88, 168, 168))
        dt = time.perf_counter() - t0
    out = {"generate_fps": len(frames) / dt, "generate_s": dt, "frames": len(frames), "windows": info["windows"],
           "denoise_steps": 20, "peak_rss_mb": _peak_mb(), "rss_rise_mb": _peak_mb() - before, "threads": threads,
           "device": device}
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--part", choices=["all", "train", "generate"], default="all")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    result: dict = {}
    if args.part in ("all", "train"):
        result["train"] = bench_train(args.threads, args.steps, args.device)
    if args.part == "generate":
        result["generate"] = bench_generate(args.threads, args.seconds, args.device)
    elif args.part == "all":  # generation in a fresh process, so its memory peak is its own
        cmd = [sys.executable, __file__, "--part", "generate", "--threads", str(args.threads), "--seconds",
               str(args.seconds), "--device", args.device]
        result["generate"] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["generate"]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
