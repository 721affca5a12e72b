"""What the reproducible encoder costs: kling.io.VideoWriter's x264 settings against libx264's defaults.

    .venv/bin/python benchmarks/bench_encode.py [--clip cal_halfbody] [--frames 125] [--repeat 4] [--json OUT]

Renders the frames of one demo-corpus clip once (kling.demo; default the 576x768 half-body clip, where the
defaults were seen to give other bytes on every run), then encodes them in memory `--repeat` times with each
setting, interleaved, at the demo's crf and preset. Reports the best wall time of each, their ratio
(reproducible / default: the price of the same bytes on every run and machine) and how many distinct
bitstreams each setting gave over its repeats (1 = reproducible).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from fractions import Fraction

import av
import numpy as np

from kling.clock import FPS
from kling.demo.clip import plan_clip, render_clip_frame
from kling.demo.corpus import load_recipe
from kling.io.encode import X264_REPRODUCIBLE


def encode(frames: np.ndarray, crf: int, preset: str, x264_params: str | None) -> tuple[float, str]:
    """Seconds to encode `frames` to h264 in memory, and the sha256 of the bitstream."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.height, ctx.width = frames.shape[1:3]
    ctx.pix_fmt, ctx.time_base, ctx.framerate = "yuv420p", Fraction(1, FPS), Fraction(FPS)
    ctx.options = {"crf": str(crf), "preset": preset} | ({"x264-params": x264_params} if x264_params else {})
    digest = hashlib.sha256()
    start = time.perf_counter()
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = i
        for packet in ctx.encode(frame):
            digest.update(bytes(packet))
    for packet in ctx.encode(None):
        digest.update(bytes(packet))
    return time.perf_counter() - start, digest.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="cal_halfbody")
    ap.add_argument("--frames", type=int, default=125)
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}", flush=True)

    recipe = load_recipe(half_body=True)
    spec = next(c for c in recipe["clips"] if c["id"] == args.clip)
    plan = plan_clip(spec, recipe, int(recipe["seed"]))
    frames = np.stack([render_clip_frame(plan, i) for i in range(min(args.frames, plan.n_frames))])
    crf, preset = int(recipe.get("crf", 18)), str(recipe.get("preset", "medium"))

    settings = {"default": None, "reproducible": X264_REPRODUCIBLE}
    times: dict[str, list[float]] = {k: [] for k in settings}
    digests: dict[str, set[str]] = {k: set() for k in settings}
    for _ in range(args.repeat):
        for name, params in settings.items():
            seconds, digest = encode(frames, crf, preset, params)
            times[name].append(seconds)
            digests[name].add(digest)
    out = {"clip": args.clip, "frames": len(frames), "size": list(frames.shape[1:3]), "crf": crf, "preset": preset,
           "x264_params": X264_REPRODUCIBLE, "repeat": args.repeat,
           **{f"{k}_best_s": round(min(v), 3) for k, v in times.items()},
           **{f"{k}_distinct_bitstreams": len(v) for k, v in digests.items()},
           "ratio_reproducible_over_default": round(min(times["reproducible"]) / min(times["default"]), 3),
           "load_after": round(os.getloadavg()[0], 2)}
    for k, v in out.items():
        print(f"{k:34s} {v}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
