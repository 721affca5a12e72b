"""Sync-C / Sync-D speed, as ratios measured in the same run (no pass/fail: the numbers are reported).

1. Cropped clips, same weights file: the reference demo (syncnet-python 0.2.3's SyncNetInstance.evaluate,
   fed through its own JPEG path: frames decoded and written as JPEG files, audio as a wav, then read
   back by evaluate()) against ``kling eval sync --cropped`` run as a fresh process (its start counted).
   Also reports how far the JPEG round trip moves Sync-D against our lossless numbers.
2. Full pipeline (detect, track, crop, score) on an 8 s 512x512 talking-head clip: seconds per second of
   video (below 1 = faster than real time), for the whole fresh process and for the video's own work
   (the `seconds` the command reports per video; the rest is the one-off start: imports, model loads).

Weights are a seeded random file in the official format (the official file cannot be fetched here); the
work per frame is identical to the official weights'. The reference oracle is found like the parity test
(KLING_SYNCNET_ORACLE or an importable syncnet_python); without it part 1 reports ours only.

    python benchmarks/bench_sync.py [--clips 2] [--seconds 8] [--threads 2] [--out result.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from kling.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: E402


def _kling_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "kling"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from kling.cli import main; main()"]


def _oracle():
    env = os.environ.get("KLING_SYNCNET_ORACLE")
    roots = [Path(env)] if env else []
    spec = importlib.util.find_spec("syncnet_python")
    if spec is not None and spec.submodule_search_locations:
        roots.append(Path(list(spec.submodule_search_locations)[0]).parent)
    for root in roots:
        pkg = root / "syncnet_python"
        if (pkg / "SyncNetInstance.py").is_file():
            mods = {}
            for name in ("SyncNetModel", "SyncNetInstance"):
                s = importlib.util.spec_from_file_location(f"_oracle_{name}", pkg / f"{name}.py")
                m = importlib.util.module_from_spec(s)
                s.loader.exec_module(m)
                mods[name] = m
            return types.SimpleNamespace(**mods)
    return None


def reference_demo(oracle, weights: Path, video: Path, work: Path, batch_size: int = 20) -> dict:
    """The reference demo's path on one cropped video: frames -> JPEG files, audio -> wav, evaluate()."""
    import contextlib
    import io

    import cv2
    from scipy.io import wavfile

    from kling.io.audio import read_audio
    from kling.io.decode import iter_frames

    t0 = time.perf_counter()
    net = oracle.SyncNetModel.S()
    inst = oracle.SyncNetInstance.SyncNetInstance(net, device="cpu")
    inst.loadParameters(str(weights))
    tmp = work / "pytmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    k = 0
    for chunk in iter_frames(video, fps=FPS):  # what `ffmpeg -i video -f image2 %06d.jpg` does
        for f in chunk.frames:
            k += 1
            cv2.imwrite(str(tmp / f"{k:06d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    audio = read_audio(video)
    wavfile.write(tmp / "audio.wav", SAMPLE_RATE, np.clip(np.rint(audio * 32768), -32768, 32767).astype(np.int16))
    opt = types.SimpleNamespace(tmp_dir=str(tmp), batch_size=batch_size, vshift=15)
    with contextlib.redirect_stdout(io.StringIO()):
        offset, conf, minval = inst.evaluate(opt)
    return {"seconds": time.perf_counter() - t0, "av_offset": int(offset), "sync_c": float(conf), "sync_d": float(minval)}


def ours(videos: list[Path], weights: Path | None, cropped: bool, threads: int) -> tuple[float, list[dict]]:
    cmd = _kling_cmd() + ["eval", "sync", *map(str, videos), "--json", "--threads", str(threads)]
    if cropped:
        cmd.append("--cropped")
    if weights is not None:
        cmd += ["--weights", str(weights)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    dt = time.perf_counter() - t0
    return dt, [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def make_cropped_clips(work: Path, n: int, seconds: float) -> list[Path]:
    from tests.support.sync import draw_face_frames, synthetic_speech
    from kling.io.encode import write_video

    frames = int(seconds * FPS)
    paths = []
    for i in range(n):
        audio, env = synthetic_speech(frames, seed=10 + i)
        paths.append(write_video(work / f"crop{i}.mp4", draw_face_frames(env, seed=10 + i), fps=FPS, audio=audio))
    return paths


def make_full_clip(work: Path, seconds: float, size: int = 512) -> Path:
    """A demo-corpus talking head (detectable by the real face detector) at size x size, seconds long."""
    import cv2

    from kling.demo import generate_corpus
    from kling.io.audio import read_audio
    from kling.io.decode import read_frames
    from kling.io.encode import write_video

    man = generate_corpus(work / "demo", clip_ids=["ava_talk"])
    src = man.path("ava_talk")
    frames, audio = read_frames(src), read_audio(src)
    n = int(seconds * FPS)
    idx = np.arange(n) % (2 * len(frames))
    idx = np.where(idx < len(frames), idx, 2 * len(frames) - 1 - idx)  # play forward then backward
    big = (cv2.resize(frames[i], (size, size), interpolation=cv2.INTER_CUBIC) for i in idx)
    aud = np.concatenate([audio, audio[::-1]])[: n * SAMPLES_PER_FRAME]
    return write_video(work / "full512.mp4", big, fps=FPS, audio=aud)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    from tests.support.sync import write_official_format_weights

    torch.set_num_threads(args.threads)
    report: dict = {"threads": args.threads, "clip_seconds": args.seconds, "clips": args.clips}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        weights = write_official_format_weights(work / "syncnet_v2.model", seed=0)
        videos = make_cropped_clips(work, args.clips, args.seconds)
        our_s, rows = ours(videos, weights, cropped=True, threads=args.threads)
        report["cropped_ours_s"] = round(our_s, 2)
        oracle = _oracle()
        if oracle is None:
            report["cropped_reference"] = "oracle syncnet-python 0.2.3 not installed"
        else:
            ref = [reference_demo(oracle, weights, v, work) for v in videos]
            ref_s = sum(r["seconds"] for r in ref)
            report["cropped_reference_s"] = round(ref_s, 2)
            report["cropped_speedup"] = round(ref_s / our_s, 2)
            report["jpeg_round_trip_sync_d_shift"] = [round(r["sync_d"] - o["sync_d"], 4) for r, o in zip(ref, rows)]
            report["jpeg_round_trip_sync_c_shift"] = [round(r["sync_c"] - o["sync_c"], 4) for r, o in zip(ref, rows)]
        if not args.skip_full:
            full = make_full_clip(work, args.seconds)
            full_s, full_rows = ours([full], weights, cropped=False, threads=args.threads)
            report["full_pipeline_s"] = round(full_s, 2)  # the whole fresh process
            report["full_pipeline_realtime_factor"] = round(full_s / args.seconds, 3)  # < 1: faster than real time
            if full_rows and full_rows[0].get("seconds") is not None:
                # the video's own work (tracks, crops, scores), what every further video of one command costs
                per_video = full_rows[0]["seconds"]
                report["full_pipeline_per_video_s"] = per_video
                report["full_pipeline_per_video_realtime_factor"] = round(per_video / args.seconds, 3)
                report["full_pipeline_process_start_s"] = round(full_s - per_video, 2)
            report["full_pipeline_status"] = full_rows[0]["status"] if full_rows else "no output"
            report["full_pipeline_tracks"] = len(full_rows[0]["tracks"]) if full_rows else 0
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
