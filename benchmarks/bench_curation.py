"""Curation throughput on real clips, as a ratio to decode-only throughput of the same files in the same run.

    python benchmarks/bench_curation.py [CLIP.mp4 ...] [--repeat 2] [--profile demo] [--json out.json]

Without paths it takes ../shared/data/clips/*.mp4 next to the repository root and prints
"skipped: no clips" (exit 0) when that folder is absent. For each clip and repetition, in this process:

  decode  : kling.io.decode.iter_frames at 25 fps (all frames, source size) + kling.io.audio.read_audio,
            the floor any curation must pay once;
  curate  : kling.curate.steps.run_video (normalise -> shots -> face_tracks -> speech -> quality) into a fresh
            temporary Workspace, so nothing is served from the step cache.

Figures are video-seconds per wall-second (and CPU seconds: process time, all threads), the best (lowest-wall)
repetition of each, and the ratio curate / decode of those throughputs. Per-step seconds come from the
StepRecords. One untimed warm-up curation of the first clip loads the models (dlib, silero) first, as in
any long run; its time is printed as the cold start (--no-warmup counts it in the first clip instead).
Numbers depend on the machine and its load (printed): compare ratios from one run, never absolute seconds
across machines; nothing here is a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kling.clock import FPS, SAMPLE_RATE

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS_DIR = REPO_ROOT.parent / "shared" / "data" / "clips"


def default_clips(clips_dir: Path | None = None) -> list[Path]:
    """The shared real clips (../shared/data/clips/*.mp4 beside the repository), or [] when absent."""
    clips_dir = clips_dir or DEFAULT_CLIPS_DIR
    return sorted(clips_dir.glob("*.mp4")) if clips_dir.is_dir() else []


def machine_state() -> dict:
    """CPU count and load average: the context every figure here must be read in."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpus": os.cpu_count(), "loadavg_1_5_15": [round(x, 2) for x in load],
            "python": platform.python_version(), "platform": platform.platform()}


def load_text(state: dict) -> str:
    a, b, c = state["loadavg_1_5_15"]
    return f"cpus={state['cpus']} load average {a:.2f}, {b:.2f}, {c:.2f}"


class Timer:
    """Wall (perf_counter) and CPU (process_time: every thread of this process) seconds of a block."""

    def __enter__(self) -> "Timer":
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c


def decode_once(path: Path) -> dict:
    from kling.io.audio import read_audio
    from kling.io.decode import iter_frames

    with Timer() as t:
        frames = sum(len(chunk) for chunk in iter_frames(path, fps=FPS))
        audio = read_audio(path)
    return {"wall_s": t.wall, "cpu_s": t.cpu, "frames": frames,
            "audio_s": None if audio is None else len(audio) / SAMPLE_RATE}


def curate_once(path: Path, profile) -> dict:
    from kling.curate.runner import Workspace
    from kling.curate.sources import VideoRef
    from kling.curate.steps import STEPS, run_video

    with tempfile.TemporaryDirectory(prefix="bench_curation_") as root:
        with Timer() as t:
            records = run_video(Workspace(root), VideoRef(path.stem, path), profile, steps=STEPS[:5])  # lip_sync needs a trained scorer
    steps = {r.step: {"seconds": r.seconds, "status": r.status, "reason": r.reason, "cached": r.cached}
             for r in records}
    faces = next((r.counts for r in records if r.step == "face_tracks"), {})
    return {"wall_s": t.wall, "cpu_s": t.cpu, "steps": steps, "detector": faces.get("detector"),
            "face_found_rate": faces.get("face_found_rate")}


def bench_clip(path: Path, profile, repeat: int, decode_repeat: int) -> dict:
    from kling.io.probe import probe

    info = probe(path)
    decodes, curations = [], []
    for i in range(max(repeat, decode_repeat)):  # interleaved, so both see the same background load
        decodes.append(decode_once(path))  # cheap and short: more repetitions to steady its minimum
        if i < repeat:
            curations.append(curate_once(path, profile))
    video_s = decodes[0]["frames"] / FPS
    best_d = min(decodes, key=lambda r: r["wall_s"])
    best_c = min(curations, key=lambda r: r["wall_s"])
    bad = {s: r for c in curations for s, r in c["steps"].items() if r["status"] != "ok"}
    return {
        "clip": str(path), "name": path.name, "size": f"{info.width}x{info.height}", "codec": info.video_codec,
        "source_fps": info.fps, "video_s": video_s, "frames": decodes[0]["frames"],
        "decode": {**best_d, "vs_per_s": video_s / best_d["wall_s"], "all_wall_s": [r["wall_s"] for r in decodes]},
        "curate": {**best_c, "vs_per_s": video_s / best_c["wall_s"], "all_wall_s": [r["wall_s"] for r in curations]},
        # throughput ratio: curation speed as a fraction of the decode floor (1.0 would be free curation)
        "ratio_curate_to_decode": best_d["wall_s"] / best_c["wall_s"],
        "cpu_ratio_curate_to_decode": best_d["cpu_s"] / best_c["cpu_s"] if best_c["cpu_s"] else None,
        "step_seconds_median": {s: statistics.median(c["steps"][s]["seconds"] for c in curations)
                                for s in best_c["steps"]},
        "not_ok_steps": bad,
    }


def print_table(rows: list[dict], total: dict) -> None:
    hdr = (f"{'clip':<26}{'video_s':>8}{'dec vs/s':>10}{'dec cpu':>9}{'cur vs/s':>10}{'cur cpu':>9}"
           f"{'cur/dec':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows + [total]:
        print(f"{r['name'][:25]:<26}{r['video_s']:>8.1f}{r['decode']['vs_per_s']:>10.2f}{r['decode']['cpu_s']:>9.2f}"
              f"{r['curate']['vs_per_s']:>10.2f}{r['curate']['cpu_s']:>9.2f}{r['ratio_curate_to_decode']:>9.3f}")
    steps = list(rows[0]["curate"]["steps"]) if rows else []
    print("\nper-step seconds (best curation run; StepRecord.seconds) and share of the curation wall time")
    print(f"{'clip':<26}" + "".join(f"{s:>13}" for s in steps))
    for r in rows:
        wall = r["curate"]["wall_s"]
        cells = "".join(f"{r['curate']['steps'][s]['seconds']:>7.2f}({r['curate']['steps'][s]['seconds'] / wall:>4.0%})"
                        for s in steps)
        print(f"{r['name'][:25]:<26}{cells}")


def totals(rows: list[dict]) -> dict:
    video_s = sum(r["video_s"] for r in rows)
    d_wall, c_wall = sum(r["decode"]["wall_s"] for r in rows), sum(r["curate"]["wall_s"] for r in rows)
    d_cpu, c_cpu = sum(r["decode"]["cpu_s"] for r in rows), sum(r["curate"]["cpu_s"] for r in rows)
    return {"name": "TOTAL", "video_s": video_s,
            "decode": {"wall_s": d_wall, "cpu_s": d_cpu, "vs_per_s": video_s / d_wall},
            "curate": {"wall_s": c_wall, "cpu_s": c_cpu, "vs_per_s": video_s / c_wall},
            "ratio_curate_to_decode": d_wall / c_wall, "cpu_ratio_curate_to_decode": d_cpu / c_cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, help=f"clips (default: {DEFAULT_CLIPS_DIR}/*.mp4)")
    ap.add_argument("--repeat", type=int, default=2, help="curation runs per clip; the fastest is reported")
    ap.add_argument("--decode-repeat", type=int, default=5, help="decode-only runs per clip; the fastest is reported")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the untimed first curation (model loading then lands in the first clip's figures)")
    ap.add_argument("--profile", default="demo", help="curation profile name or YAML path")
    ap.add_argument("--json", type=Path, default=None, help="write all figures to this JSON file")
    args = ap.parse_args(argv)

    paths = args.paths or default_clips()
    if not paths:
        print(f"skipped: no clips (looked in {DEFAULT_CLIPS_DIR})")
        return 0
    from kling.config import load_profile

    profile = load_profile(args.profile)
    before = machine_state()
    print(f"bench_curation: {len(paths)} clip(s), repeat={args.repeat}, profile={profile.name}; {load_text(before)}")
    t0 = time.perf_counter()
    cold = None
    if not args.no_warmup:  # loads the detector and VAD models once, as a long curation run would
        cold = curate_once(Path(paths[0]).resolve(), profile)
        print(f"warm-up (cold start, not counted): {Path(paths[0]).name} curated in {cold['wall_s']:.2f}s; steps "
              + ", ".join(f"{k} {v['seconds']:.2f}s" for k, v in cold["steps"].items()))
    rows = [bench_clip(Path(p).resolve(), profile, max(1, args.repeat), max(1, args.decode_repeat)) for p in paths]
    after = machine_state()
    total = totals(rows)
    print()
    print_table(rows, total)
    print(f"\ndetector: {sorted({r['curate']['detector'] for r in rows})}; "
          f"ratio = curation throughput / decode throughput (video-s per wall-s; decode is the floor)")
    for r in rows:
        if r["not_ok_steps"]:
            print(f"NOTE {r['name']}: steps not ok: {r['not_ok_steps']}")
    print(f"after: {load_text(after)}; bench wall {time.perf_counter() - t0:.0f}s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"benchmark": "curation", "profile": profile.name, "repeat": args.repeat,
                                         "decode_repeat": args.decode_repeat, "warmup": cold,
                                         "machine_before": before, "machine_after": after,
                                         "clips": rows, "total": total}, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
