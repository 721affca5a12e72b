"""Peak memory of each curation step on a short clip and on a long one made from it: is it flat in length?

    python benchmarks/bench_memory.py [--clip CLIP.mp4] [--minutes 5] [--short-minutes 1] [--max-side 256] [--json out.json]

Inputs: the short input is one pass of the clip (or ``--short-minutes`` of it), the long one ``--minutes`` of it
played back to back; both are
made the same way (streaming kling.io.decode.iter_frames -> kling.io.encode.VideoWriter, never all frames in
memory), so they differ only in length. The clip defaults to the first of ../shared/data/clips/*.mp4 next to the
repository root, or, when that is absent, a demo-corpus clip made by kling.demo.generate_corpus in a temp folder.

Each curation step (normalise, shots, face_tracks, speech, quality) runs in its own child process on each input,
in order, on one Workspace per input. The child first imports the step's modules and loads its models (the
*base*: fixed cost), then runs the step and reports its peak resident set size (VmHWM from /proc/self/status;
ru_maxrss where /proc is missing); a thread samples VmRSS meanwhile. Reported per step: peak for both lengths and
their ratio (flat = 1.0), the working set above the base (peak - base) for both, the growth in MiB per minute of
extra video (the number that says whether a step holds something proportional to the video's length, put on the
scale of the audio track and of the decoded frames), and the long run's RSS timeline (a steady climb = something
kept per frame; a jump at the end = an output table or a whole-track array). A step's first seconds of video can
raise its peak once (buffers and caches reaching their working size); one pass of a short clip may end before
that, so ``--short-minutes 1`` compares two lengths past it, and the "late" column gives the long run's own climb
over its last three quarters. Ratios, never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_curation import DEFAULT_CLIPS_DIR, default_clips, load_text, machine_state  # noqa: E402
from kling.clock import FPS, SAMPLE_RATE  # noqa: E402

STEPS = ["normalise", "shots", "face_tracks", "speech", "quality"]
MARK = "BENCH_MEMORY_RESULT "
MiB = 1024 * 1024


# -- inputs ------------------------------------------------------------------------------------------------
def make_repeated(src: Path, dst: Path, n_frames: int | None, max_side: int | None, preset: str, crf: int) -> dict:
    """Write ``n_frames`` frames of ``src`` played back to back (with its audio) to ``dst``, streaming.
    ``n_frames=None``: exactly one pass."""
    from kling.io.audio import fit_length, read_audio, samples_for_frames
    from kling.io.decode import iter_frames
    from kling.io.encode import VideoWriter
    from kling.io.probe import probe

    audio = read_audio(src)  # one pass of the source clip (seconds): the only thing held whole
    written, passes = 0, 0
    single = n_frames is None
    n_frames = 2**62 if single else n_frames
    t0 = time.perf_counter()
    with VideoWriter(dst, fps=FPS, sample_rate=None if audio is None else SAMPLE_RATE, crf=crf, preset=preset) as w:
        while written < n_frames:
            pass_frames = 0
            for chunk in iter_frames(src, fps=FPS, max_side=max_side):
                frames = chunk.frames[: n_frames - written]
                w.write(frames)
                written += len(frames)
                pass_frames += len(frames)
                if written >= n_frames:
                    break
            if pass_frames == 0:
                raise RuntimeError(f"{src}: no frame decoded")
            if audio is not None:  # the audio of exactly the frames of this pass, so A/V stay aligned
                w.write_audio(fit_length(audio, samples_for_frames(pass_frames, FPS, SAMPLE_RATE)))
            passes += 1
            if single:
                break
    info = probe(dst)
    return {"path": str(dst), "width": info.width, "height": info.height, "frames": written,
            "seconds": written / FPS, "passes": passes, "size_mib": round(dst.stat().st_size / MiB, 2),
            "make_s": round(time.perf_counter() - t0, 1)}


DEMO_CLIP_ID = "ava_talk"  # one speaking face, no defects


def demo_clip(tmp: Path) -> Path:
    """A demo-corpus clip with one speaking face, for when the shared real clips are absent."""
    from kling.demo import generate_corpus

    manifest = generate_corpus(tmp / "demo_corpus", clip_ids=[DEMO_CLIP_ID])
    return manifest.path(DEMO_CLIP_ID)


# -- child: one step, one process --------------------------------------------------------------------------
def _proc_status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _preload(step: str, profile) -> None:
    """Import what the step imports and load its models, so that `base` is the fixed cost of the step."""
    from kling.curate import steps as st
    import kling.io.audio, kling.io.decode, kling.io.encode  # noqa: E401,F401
    import pandas, pyarrow.parquet  # noqa: E401,F401

    cfg = st._configs(profile)[step]
    if step == "normalise":
        import kling.curate.normalise  # noqa: F401
    elif step == "shots":
        import kling.perception.shots  # noqa: F401
    elif step == "face_tracks":
        from kling.perception.faces.tracks import detector_for

        detector_for(cfg)  # lru-cached: the step reuses this instance
    elif step == "speech":
        from kling.perception.speech import load_vad

        load_vad()  # lru-cached likewise
    elif step == "quality":
        import kling.curate.filters, kling.curate.quality  # noqa: E401,F401


class RssSampler:
    """VmRSS every `interval` s in a thread: whether a step's memory climbs steadily (holds something per
    frame) or only spikes at its end (e.g. building the output table) shows in the timeline, not the peak."""

    def __init__(self, interval: float = 0.25):
        import threading

        self.interval, self.samples = interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.perf_counter()
        while True:
            rss = _proc_status_kib("VmRSS")
            if rss is not None:
                self.samples.append((time.perf_counter() - t0, rss / 1024))
            if self._stop.wait(self.interval):
                break
        rss = _proc_status_kib("VmRSS")  # one last sample at the end of the step
        if rss is not None:
            self.samples.append((time.perf_counter() - t0, rss / 1024))

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, fractions=(0.25, 0.5, 0.75, 1.0)) -> list[float | None]:
        """Highest RSS seen up to each fraction of the run time (MiB)."""
        if not self.samples:
            return [None] * len(fractions)
        end = self.samples[-1][0]
        return [round(max([m for t, m in self.samples if t <= f * end] or [self.samples[0][1]]), 1)
                for f in fractions]


def child(args) -> int:
    import resource

    from kling.config import load_profile
    from kling.curate.runner import Workspace
    from kling.curate.sources import VideoRef
    from kling.curate.steps import run_video_step

    profile = load_profile(args.profile)
    _preload(args.step, profile)
    base = _proc_status_kib("VmRSS")
    if args.trace:
        import tracemalloc

        tracemalloc.start()
    t0 = time.perf_counter()
    with RssSampler() as sampler:
        rec = run_video_step(args.step, Workspace(args.workspace), VideoRef(args.video_id, Path(args.path)), profile)
    seconds = time.perf_counter() - t0
    traced_peak = None
    if args.trace:
        traced_peak = tracemalloc.get_traced_memory()[1] / MiB
    hwm = _proc_status_kib("VmHWM")
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"step": args.step, "status": rec.status, "reason": rec.reason, "cached": rec.cached,
           "seconds": round(seconds, 2), "base_mib": None if base is None else base / 1024,
           "peak_mib": (hwm if hwm is not None else ru) / 1024, "ru_maxrss_mib": ru / 1024,
           "traced_peak_mib": traced_peak, "rss_at_25_50_75_100pct_mib": sampler.at()}
    print(MARK + json.dumps(out), flush=True)
    return 0


def run_child(step: str, ws: Path, video_id: str, path: Path, profile: str, trace: bool, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "child", "--step", step, "--workspace", str(ws), "--video-id", video_id,
           "--path", str(path), "--profile", profile] + (["--trace"] if trace else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {step} on {video_id} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


# -- report ------------------------------------------------------------------------------------------------
def compare(short: dict, long: dict, short_s: float, long_s: float) -> dict:
    extra_min = (long_s - short_s) / 60.0
    ws = short["peak_mib"] - short["base_mib"]
    wl = long["peak_mib"] - long["base_mib"]
    at = long["rss_at_25_50_75_100pct_mib"]
    return {
        "peak_ratio": long["peak_mib"] / short["peak_mib"],
        "work_short_mib": ws, "work_long_mib": wl,
        "work_ratio": wl / ws if ws > 1.0 else None,
        "growth_mib_per_min": (long["peak_mib"] - short["peak_mib"]) / extra_min if extra_min > 0 else None,
        # the long run's climb from a quarter of its run time to its end (run time ~ video time for these steps)
        "late_mib_per_min": (at[3] - at[0]) / (0.75 * long_s / 60.0) if None not in (at[0], at[3]) else None,
    }


AUDIO_KIB_PER_S = SAMPLE_RATE * 4 / 1024  # one float32 copy of the 16 kHz mono track: 62.5 KiB per video-second


def verdict(growth_mib_per_min: float | None, frame_kib_per_s: float, flat_mib_per_min: float) -> str:
    """Name what a growth rate means: nothing, per-frame/per-sample data, or decoded frames being held."""
    if growth_mib_per_min is None or growth_mib_per_min <= flat_mib_per_min:
        return "flat"
    kib_per_s = growth_mib_per_min * 1024 / 60
    if kib_per_s >= 0.5 * frame_kib_per_s:  # holding every decoded frame once would be 100%
        return f"HOLDS FRAMES? ({kib_per_s / frame_kib_per_s:.0%} of decoded frames)"
    return f"grows: {kib_per_s:.0f} KiB/s = {kib_per_s / AUDIO_KIB_PER_S:.1f}x audio track, " \
           f"{kib_per_s / frame_kib_per_s:.1%} of frames"


def print_table(rows: list[dict], inputs: dict, flat_mib_per_min: float) -> None:
    short_s, long_s = inputs["short"]["seconds"], inputs["long"]["seconds"]
    w, h = inputs["long"]["width"], inputs["long"]["height"]
    frame_kib_per_s = w * h * 3 * FPS / 1024
    print(f"\npeak RSS per step (MiB): short = {short_s:.1f} s, long = {long_s:.1f} s of {w}x{h} video")
    hdr = (f"{'step':<12}{'base':>7}{'peak S':>9}{'peak L':>9}{'L/S':>7}{'work S':>9}{'work L':>9}{'work L/S':>9}"
           f"{'MiB/min':>9}{'late':>7}{'sec S':>8}{'sec L':>8}  verdict")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        s, l, c = r["short"], r["long"], r["compare"]
        wr = "-" if c["work_ratio"] is None else f"{c['work_ratio']:.2f}"
        g = c["growth_mib_per_min"]
        late = "-" if c.get("late_mib_per_min") is None else f"{c['late_mib_per_min']:.2f}"
        r["verdict"] = verdict(g, frame_kib_per_s, flat_mib_per_min)
        if s["status"] != "ok" or l["status"] != "ok":
            r["verdict"] += f" (status {s['status']}/{l['status']}: {l['reason'] or s['reason']})"
        print(f"{r['step']:<12}{l['base_mib']:>7.0f}{s['peak_mib']:>9.1f}{l['peak_mib']:>9.1f}{c['peak_ratio']:>7.3f}"
              f"{c['work_short_mib']:>9.1f}{c['work_long_mib']:>9.1f}{wr:>9}{g:>9.2f}{late:>7}{s['seconds']:>8.1f}"
              f"{l['seconds']:>8.1f}  {r['verdict']}")
    print("base = RSS after imports and model loading; work = peak - base; MiB/min = (peak L - peak S) per extra "
          "minute of video; late = the long run's own climb per minute over its last three quarters; flat when "
          f"MiB/min <= {flat_mib_per_min:g}. Scale: the float32 audio track is "
          f"{AUDIO_KIB_PER_S:.1f} KiB/s, the decoded frames {frame_kib_per_s:.0f} KiB/s.")
    print("long input, highest RSS up to 25/50/75/100% of the step's run time (MiB; steady climb = holds "
          "something per frame, jump at the end = output table):")
    for r in rows:
        print(f"  {r['step']:<12} " + " ".join(f"{m:7.1f}" for m in r["long"]["rss_at_25_50_75_100pct_mib"]))
    if any(r["short"]["traced_peak_mib"] is not None for r in rows):
        print("tracemalloc peak (Python + numpy allocations, MiB): " + ", ".join(
            f"{r['step']} {r['short']['traced_peak_mib']:.1f} -> {r['long']['traced_peak_mib']:.1f}" for r in rows))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        cp = argparse.ArgumentParser(prog="bench_memory.py child")
        for name in ("--step", "--workspace", "--video-id", "--path", "--profile"):
            cp.add_argument(name, required=True)
        cp.add_argument("--trace", action="store_true")
        return child(cp.parse_args(argv[1:]))

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=None,
                    help=f"source clip (default: first of {DEFAULT_CLIPS_DIR}/*.mp4, else a demo-corpus clip)")
    ap.add_argument("--demo", action="store_true", help="use the demo-corpus clip even when shared clips exist")
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the long input")
    ap.add_argument("--short-minutes", type=float, default=None,
                    help="length of the short input (default: one pass of the clip)")
    ap.add_argument("--max-side", type=int, default=None,
                    help="downscale both inputs so the long side is at most this (faster; default: source size)")
    ap.add_argument("--preset", default="veryfast", help="x264 preset for making the inputs (not for the steps)")
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--steps", nargs="+", default=STEPS, choices=STEPS,
                    help="steps to report (their upstream steps still run first, in their own children)")
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--trace", action="store_true", help="also report tracemalloc's peak (slower)")
    ap.add_argument("--flat-mib-per-min", type=float, default=2.0,
                    help="growth below which a step is called flat in the table (a label, not a test)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per child process")
    ap.add_argument("--workdir", type=Path, default=None, help="keep inputs and workspaces here (default: temp)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    before = machine_state()
    short_what = "one pass" if args.short_minutes is None else f"{args.short_minutes:g} min"
    print(f"bench_memory: {args.minutes:g} min vs {short_what}; {load_text(before)}")
    t_start = time.perf_counter()
    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench_memory_") if args.workdir is None else None
    work = Path(tmp_ctx.name) if tmp_ctx else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        clip = args.clip or (None if args.demo else next(iter(default_clips()), None))
        source = "shared"
        if clip is None:
            source = "demo_corpus"
            clip = demo_clip(work)
        clip = Path(clip).resolve()
        short_frames = None if args.short_minutes is None else int(round(args.short_minutes * 60 * FPS))
        inputs = {"short": make_repeated(clip, work / "short.mp4", short_frames, args.max_side, args.preset, args.crf)}
        inputs["long"] = make_repeated(clip, work / "long.mp4", int(round(args.minutes * 60 * FPS)), args.max_side,
                                       args.preset, args.crf)
        print(f"source ({source}): {clip}")
        for k, v in inputs.items():
            print(f"  {k}: {v['seconds']:.1f} s, {v['frames']} frames, {v['passes']} pass(es), {v['size_mib']} MiB,"
                  f" made in {v['make_s']} s")

        results: dict[str, dict[str, dict]] = {"short": {}, "long": {}}
        last = STEPS.index(max(args.steps, key=STEPS.index))
        for length in ("short", "long"):
            ws = work / f"ws_{length}"
            for step in STEPS[: last + 1]:  # upstream steps always run: later steps read their outputs
                r = run_child(step, ws, f"bench_{length}", Path(inputs[length]["path"]), args.profile, args.trace,
                              args.timeout)
                results[length][step] = r
                print(f"  {length:<5} {step:<12} {r['status']:<8} peak {r['peak_mib']:7.1f} MiB "
                      f"(base {r['base_mib']:6.1f})  {r['seconds']:7.1f} s", flush=True)
        rows = [{"step": s, "short": results["short"][s], "long": results["long"][s],
                 "compare": compare(results["short"][s], results["long"][s], inputs["short"]["seconds"],
                                    inputs["long"]["seconds"])} for s in args.steps]
        print_table(rows, inputs, args.flat_mib_per_min)
        after = machine_state()
        print(f"after: {load_text(after)}; bench wall {time.perf_counter() - t_start:.0f}s")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"benchmark": "memory", "source": source, "clip": str(clip),
                                             "minutes": args.minutes, "short_minutes": args.short_minutes,
                                             "max_side": args.max_side,
                                             "profile": args.profile, "inputs": inputs, "steps": rows,
                                             "machine_before": before, "machine_after": after}, indent=2))
            print(f"wrote {args.json}")
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
