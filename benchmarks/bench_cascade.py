"""Speed and memory of the spatio-temporal cascade (kling.generate.cascade), tiny configuration, as ratios.

1. stages: one --seconds clip through the cascade with sub-clips serial (1 worker) and parallel (--workers),
   per-stage seconds, seconds of video per second of compute, and whether both give the same faces bit for
   bit; the same clip window after window (the chunked baseline) for reference.
2. memory: fresh processes generate --short and --long seconds (5 minutes for the issue's bar: --long 300);
   their peak resident set (ru_maxrss) and time, as ratios: memory within 10 % and time linear in the duration.

The model is the trained demo checkpoint when one exists under $KLING_HOME (else a tiny model at
initialisation: the work per frame is the same; keyframe scoring then finds no faces); the super-resolution
stage runs when a trained network is there too (--no-super-resolution: without it). Input: a demo-corpus
reference frame and its speech looped to the duration.

    python benchmarks/bench_cascade.py [--part stages|memory|all] [--seconds 30] [--workers 2] [--short 30]
                                       [--long 120] [--steps 10] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _inputs(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    from tests.support.avatar import demo_frames

    frames, audio = demo_frames("ava_talk", 4.0)
    reps = int(np.ceil(seconds * 16000 / len(audio)))
    return frames[0], np.tile(audio, reps)[: int(seconds * 16000)]


def _pipeline(root: Path):
    from kling.generate.avatar_pipeline import AvatarPipeline, load_checkpoint
    from kling.paths import Layout

    trained = Layout.default().training("avatar")
    if (trained / "latest.json").is_file():
        return AvatarPipeline(load_checkpoint(trained)), "trained"
    from tests.support.avatar import generation_inputs

    _, ckpt, _, _ = generation_inputs(root, 0.2)
    return AvatarPipeline(load_checkpoint(root / "run")), "initialisation"


def _upscaler(args):
    from kling.models.super_resolution import load_super_resolution
    from kling.paths import Layout

    if args.no_super_resolution:
        return None
    try:
        return load_super_resolution(Layout.default().training("super_resolution"))
    except FileNotFoundError:
        return None


def stages(args) -> dict:
    import torch

    from kling.generate.avatar_pipeline import GenerateConfig
    from kling.generate.cascade import CascadeConfig, generate_cascade

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pipe, weights = _pipeline(tmp)
        image, audio = _inputs(args.seconds)
        config = GenerateConfig(steps=args.steps, anchor="reference")
        upscaler = _upscaler(args)
        out = {"seconds_of_video": args.seconds, "weights": weights, "steps": args.steps, "super_resolution": upscaler is not None}
        t = time.perf_counter()
        pipe(image, audio, config=GenerateConfig(steps=args.steps, anchor="previous"))
        chunked = time.perf_counter() - t
        out["chunked"] = {"seconds": round(chunked, 2), "video_s_per_compute_s": round(args.seconds / chunked, 4)}
        faces = {}
        for workers in (1, args.workers):
            t = time.perf_counter()
            rec = generate_cascade(pipe, image, audio, tmp / f"w{workers}.mp4", tmp / f"w{workers}", config=config,
                                   cascade=CascadeConfig(workers=workers, super_resolution=upscaler is not None),
                                   upscaler=upscaler)
            total = time.perf_counter() - t
            faces[workers] = np.load(tmp / f"w{workers}" / "faces.npy")
            out[f"cascade_workers_{workers}"] = {
                "seconds": round(total, 2), "video_s_per_compute_s": round(args.seconds / total, 4),
                "stage_seconds": rec["stage_seconds"],
                "stage_video_s_per_compute_s": {k: round(args.seconds / v, 3) for k, v in rec["stage_seconds"].items() if v},
                "subclips": len(rec["subclips"])}
        out["parallel_equals_serial"] = bool(np.array_equal(faces[1], faces[args.workers]))
        out["subclip_speedup"] = round(out["cascade_workers_1"]["stage_seconds"]["subclips"] /
                                       out[f"cascade_workers_{args.workers}"]["stage_seconds"]["subclips"], 3)
        return out


def _one(seconds: float, args) -> dict:
    """Run in a fresh process: generate `seconds` through the cascade; its own peak memory and time."""
    cmd = [sys.executable, __file__, "--part", "one", "--seconds", str(seconds), "--steps", str(args.steps),
           "--workers", str(args.workers), "--threads", str(args.threads)] + (["--no-super-resolution"] if args.no_super_resolution else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def one(args) -> None:
    import torch

    from kling.generate.avatar_pipeline import GenerateConfig
    from kling.generate.cascade import CascadeConfig, generate_cascade

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        pipe, _ = _pipeline(Path(tmp))
        image, audio = _inputs(args.seconds)
        upscaler = _upscaler(args)
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        t = time.perf_counter()
        generate_cascade(pipe, image, audio, Path(tmp) / "v.mp4", Path(tmp) / "v", config=GenerateConfig(steps=args.steps,
                         anchor="reference"), cascade=CascadeConfig(workers=args.workers,
                                                                    super_resolution=upscaler is not None), upscaler=upscaler)
        seconds = time.perf_counter() - t
    # workers are other processes: their peak is reported apart (RUSAGE_CHILDREN: the largest child's)
    print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "peak_mb_after_load": loaded,
                      "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}))


def memory(args) -> dict:
    short, long = _one(args.short, args), _one(args.long, args)
    return {"short_s": args.short, "long_s": args.long, "short": short, "long": long,
            "peak_ratio": round(long["peak_mb"] / short["peak_mb"], 4),
            "worker_peak_ratio": round(long["worker_peak_mb"] / max(short["worker_peak_mb"], 1e-9), 4),
            "time_ratio": round(long["seconds"] / short["seconds"], 3), "duration_ratio": round(args.long / args.short, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["stages", "memory", "all", "one"], default="all")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--short", type=float, default=30.0)
    ap.add_argument("--long", type=float, default=120.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-super-resolution", action="store_true", help="leave the super-resolution stage out")
    args = ap.parse_args()
    if args.part == "one":
        return one(args)
    result = {}
    if args.part in ("stages", "all"):
        result["stages"] = stages(args)
    if args.part in ("memory", "all"):
        result["memory"] = memory(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
