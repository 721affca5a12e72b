"""Feature extraction throughput: one decode fanned out to every metric vs a loop that decodes per metric.

    python benchmarks/bench_features.py [VIDEO ...] [--frames 100] [--size 256] [--with-fvd] [--threads N]

Without VIDEO a synthetic clip is written to a temp dir. Both runs extract the same things with the cache
off: FID Inception features (every 5th frame), the temporal frame statistics, and with --with-fvd the I3D
clip logits (about 8 s per 16-frame clip on 2 CPU cores). The networks carry seeded random weights in the
official formats (speed does not depend on the values). Reports video frames per second of each run and
their ratio; numbers are machine-dependent, compare them as ratios, never as pass/fail thresholds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synthetic_clip(path: Path, n: int, size: int) -> Path:
    from kling.io.encode import write_video

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, size, 3)).astype(np.uint8)
    frames = (np.roll(base, t, axis=1) for t in range(n))
    return write_video(path, frames, fps=25)


def consumers(video, fid_ext, fvd_ext):
    from eval.fid.cache import FeatureCache
    from eval.fid.sources import FIDFrameConsumer
    from eval.fvd.fvd import FVDClipConsumer
    from eval.temporal.framestats import FrameStatsConsumer

    off = FeatureCache(enabled=False)
    c = {"fid": FIDFrameConsumer(video, fid_ext, off), "stats": FrameStatsConsumer()}
    if fvd_ext is not None:
        c["fvd"] = FVDClipConsumer(video, fvd_ext, off)
    return c


def run(videos, fid_ext, fvd_ext, fan_out: bool) -> tuple[int, float]:
    from eval.frames import decode_once

    t0 = time.perf_counter()
    n = 0
    for v in videos:
        cs = consumers(v, fid_ext, fvd_ext)
        if fan_out:
            decode_once(v, cs)
        else:  # the reference loop: every metric decodes the video itself
            for name, c in cs.items():
                decode_once(v, {name: c})
        n += cs["stats"].finish(0).sharpness.size if fan_out else 0
    if not fan_out:
        from kling.io.probe import probe

        n = sum(probe(v).n_frames for v in videos)
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="*")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--with-fvd", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from eval.fid.features import load_extractor as load_fid
    from eval.fid.testing import write_inception_weights
    from eval.fvd.fvd import load_extractor as load_fvd
    from eval.fvd.testing import write_i3d_weights

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = [Path(v) for v in args.videos] or [synthetic_clip(tmp / "clip.mp4", args.frames, args.size)]
        fid_ext = load_fid(write_inception_weights(tmp / "inception.pth"))
        fvd_ext = load_fvd(write_i3d_weights(tmp / "i3d.pt")) if args.with_fvd else None
        run(videos[:1], fid_ext, fvd_ext, fan_out=True)  # warm-up (kernel selection per shape) outside the timing
        metrics = "fid+stats" + ("+fvd" if fvd_ext else "")
        print(f"cpus={os.cpu_count()} torch_threads={torch.get_num_threads()} metrics={metrics} videos={len(videos)}")
        n1, s1 = run(videos, fid_ext, fvd_ext, fan_out=False)
        print(f"decode per metric : {n1} frames in {s1:.2f}s = {n1 / s1:.1f} frames/s")
        n2, s2 = run(videos, fid_ext, fvd_ext, fan_out=True)
        print(f"decode once, fan out: {n2} frames in {s2:.2f}s = {n2 / s2:.1f} frames/s")
        print(f"speed-up {s1 / s2:.2f}x")


if __name__ == "__main__":
    main()
