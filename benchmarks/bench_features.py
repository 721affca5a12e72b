"""Feature extraction throughput: one decode fanned out to every metric vs a loop that decodes per metric.

    python benchmarks/bench_features.py [VIDEO ...] [--seconds 8] [--size N] [--with-fvd] [--threads N] [--json F]

Without VIDEO the clips in ../shared/data/clips are used (the first two), or, when that folder is absent or
--size is given, a demo-corpus talking head of ``--seconds`` at 512x512 (or --size; bench_sync.make_full_clip).
The gain is bounded by decode's share of the work: small on 512x512 clips where the networks dominate,
larger on high-resolution video. Both runs extract the same
things: lip-sync scores (SyncNet, official format), identity similarity (dlib ResNet, the first frame of the
video as reference), FID Inception features (every 5th frame), the temporal frame statistics (sharpness,
frame change, appearance), and with --with-fvd the I3D clip logits (about 8 s per 16-frame clip on 2 CPU
cores). Shots and face tracks are computed once per video before timing (both runs share them, as
eval.suite does). SyncNet, Inception and I3D carry seeded random weights in the official formats (speed
does not depend on the values); the feature cache is off. Reports video frames per second of each run and
their ratio, plus the share of one decode in the single-pass run; numbers are machine-dependent, compare
them as ratios, never as pass/fail thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: planted official-format weights
from bench_curation import default_clips, load_text, machine_state  # noqa: E402
from bench_sync import make_full_clip  # noqa: E402


class Setup:
    """Everything loaded once: networks, reference faces and face tracks per video."""

    def __init__(self, videos: list[Path], tmp: Path, with_fvd: bool):
        from eval.fid.features import load_extractor as load_fid
        from tests.support.fid import write_inception_weights
        from eval.fvd.fvd import load_extractor as load_fvd
        from tests.support.fvd import write_i3d_weights
        from eval.identity.backbones import load_backbone
        from kling.perception.faces.tracks import shot_aware_tracks
        from kling.perception.sync.pipeline import SyncEvaluator
        from tests.support.sync import write_official_format_weights
        from kling.perception.faces.detect import load_detector
        from kling.io.decode import iter_frames

        self.sync = SyncEvaluator.official(write_official_format_weights(tmp / "syncnet_v2.model"))
        self.fid = load_fid(write_inception_weights(tmp / "inception.pth"))
        self.fvd = load_fvd(write_i3d_weights(tmp / "i3d.pt")) if with_fvd else None
        self.identity = load_backbone("dlib")
        self.detector = load_detector("dlib")
        self.tracks, self.refs = {}, {}
        for v in videos:
            self.tracks[v] = shot_aware_tracks(v, self.detector)
            ref = tmp / f"{v.stem}_ref.png"
            cv2.imwrite(str(ref), cv2.cvtColor(next(iter(iter_frames(v))).frames[0], cv2.COLOR_RGB2BGR))
            self.refs[v] = [ref]

    def consumers(self, video: Path) -> dict:
        from eval.fid.cache import FeatureCache
        from eval.fid.sources import FIDFrameConsumer
        from eval.fvd.fvd import FVDClipConsumer
        from eval.identity.evaluate import identity_consumer
        from kling.clock import SAMPLE_RATE
        from eval.temporal.framestats import FrameStatsConsumer
        from kling.io.audio import read_audio

        off = FeatureCache(enabled=False)
        c = {"sync": self.sync.consumer(video, self.tracks[video], read_audio(video, sample_rate=SAMPLE_RATE)),
             "identity": identity_consumer(video, self.refs[video], self.identity, detector=self.detector,
                                           face_tracks=self.tracks[video]),
             "fid": FIDFrameConsumer(video, self.fid, off), "stats": FrameStatsConsumer()}
        if self.fvd is not None:
            c["fvd"] = FVDClipConsumer(video, self.fvd, off)
        return c


def run(videos: list[Path], setup: Setup, fan_out: bool) -> tuple[int, float, dict]:
    """(frames, seconds, results of the last video). fan_out: one decode for all metrics; else the reference
    loop, every metric decoding the video itself."""
    from kling.io.frames import FrameCounter, decode_once

    t0 = time.perf_counter()
    n, out = 0, {}
    for v in videos:
        cs = setup.consumers(v)
        if fan_out:
            out = decode_once(v, {**cs, "n": FrameCounter()}, chunk_size=32)
        else:
            out = {}
            for name, c in cs.items():
                out |= decode_once(v, {name: c, "n": FrameCounter()}, chunk_size=32)
        n += out["n"]
    return n, time.perf_counter() - t0, out


def decode_only(videos: list[Path]) -> float:
    from kling.io.frames import FrameCounter, decode_once

    t0 = time.perf_counter()
    for v in videos:
        decode_once(v, {"n": FrameCounter()}, chunk_size=32)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="*")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--size", type=int, default=None, help="make a SIZE x SIZE demo clip even when shared clips exist")
    ap.add_argument("--with-fvd", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    before = machine_state()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        videos = [Path(v) for v in args.videos] or ([] if args.size else default_clips()[:2])
        videos = videos or [make_full_clip(tmp, args.seconds, args.size or 512)]
        setup = Setup(videos, tmp, args.with_fvd)
        run(videos[:1], setup, fan_out=True)  # warm-up (kernel selection per shape) outside the timing
        metrics = "+".join(setup.consumers(videos[0]))
        print(f"{load_text(before)} torch_threads={torch.get_num_threads()} metrics={metrics} videos={len(videos)}")
        n1, s1, per_metric = run(videos, setup, fan_out=False)
        n2, s2, fanned = run(videos, setup, fan_out=True)
        sd = decode_only(videos)
        same = fanned["sync"].sync_d == per_metric["sync"].sync_d and fanned["identity"].csim == per_metric["identity"].csim
        print(f"decode per metric   : {n1} frames in {s1:.2f}s = {n1 / s1:.1f} frames/s")
        print(f"decode once, fan out: {n2} frames in {s2:.2f}s = {n2 / s2:.1f} frames/s")
        print(f"speed-up {s1 / s2:.2f}x; one decode alone {sd:.2f}s = {100 * sd / s2:.1f}% of the single pass; "
              f"same numbers both ways: {same}; after: {load_text(machine_state())}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "videos": [str(v) for v in videos], "metrics": metrics, "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(), "per_metric": {"frames": n1, "seconds": s1},
                "fan_out": {"frames": n2, "seconds": s2}, "decode_only_seconds": sd, "speedup": s1 / s2,
                "same_numbers": same}, indent=2))


if __name__ == "__main__":
    main()
