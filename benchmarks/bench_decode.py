"""Decode throughput of kling.io.iter_frames (output frames per second, wall clock).

    python benchmarks/bench_decode.py CLIP.mp4 [...] [--max-side 256] [--repeat 3]

Reports the best of ``--repeat`` runs per file and the total. Numbers are machine-dependent: compare
them as ratios against a reference run on the same machine, never as pass/fail thresholds.
"""

from __future__ import annotations

import argparse
import os
import time

from kling.io import iter_frames, probe


def bench(path: str, max_side: int | None, repeat: int) -> tuple[int, float]:
    best = float("inf")
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = sum(len(chunk) for chunk in iter_frames(path, max_side=max_side))
        best = min(best, time.perf_counter() - t0)
    return n, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--max-side", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    total_n, total_s = 0, 0.0
    print(f"cpus={os.cpu_count()} max_side={args.max_side}")
    for path in args.paths:
        info = probe(path)
        n, s = bench(path, args.max_side, args.repeat)
        total_n, total_s = total_n + n, total_s + s
        print(f"{os.path.basename(path)}: {info.width}x{info.height} {info.video_codec} "
              f"{info.fps:g} fps -> {n} frames in {s:.3f}s = {n / s:.0f} frames/s")
    print(f"TOTAL {total_n} frames in {total_s:.3f}s = {total_n / total_s:.0f} frames/s")


if __name__ == "__main__":
    main()
