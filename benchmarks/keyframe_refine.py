"""Do keyframes re-rendered under their shot keep closer to the person than the blueprint drew them? (issue 15's
keyframe stage, CascadeConfig.keyframe_refine)

Reads a finished `make demo` ($KLING_HOME): the keyframes its cascade system kept for the `demo` benchmark's
cases (keyframes/*.png, the blueprint's when the system already re-renders them, at the blueprint's side) and the trained avatar model.
Re-renders every keyframe after the first (AvatarPipeline.refine, under the prompt of the sub-clip it starts and
its audio) at each strength, and reports against the blueprint's frames: identity (dlib descriptor cosine to the
reference; mean over the keyframes where a face is found, and over those found in both), faces found,
sharpness (Laplacian variance), and PSNR / SSIM to the ground-truth frame cropped at the same face window
(eval.fidelity.pixels, the suite's protocol). A report, not a test: the full cascade with it is
benchmarks/cascade_bars.py's `cascade.tiny.keyframe-refine`.

    KLING_HOME=.kling python benchmarks/keyframe_refine.py [--strengths 0.2 0.4] [--system cascade.tiny]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.2, 0.4])
    ap.add_argument("--system", default="cascade.tiny")
    ap.add_argument("--benchmark", default="demo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import cv2
    import numpy as np
    import torch

    from eval.benchmarks import load_benchmark
    from eval.fidelity.pixels import frame_scores
    from kling.config import load_profile
    from kling.generate.avatar_pipeline import AvatarPipeline, load_checkpoint
    from kling.generate.cascade import refine_keyframe
    from kling.generate.keyframes import KeyframeScorer
    from kling.generate.system import SystemConfig
    from kling.io.audio import read_audio
    from kling.io.decode import read_frames
    from kling.models.framing import crop
    from kling.paths import Layout

    torch.set_num_threads(args.threads)
    layout = Layout.default()
    bench = load_benchmark(layout.benchmark_dir(args.benchmark) / "benchmark.yaml")
    system = SystemConfig.from_profile(load_profile().section("generation")["systems"][args.system])
    pipe = AvatarPipeline(load_checkpoint(layout.training("avatar")))
    folder = layout.systems_dir(args.benchmark) / args.system

    def png(path: Path) -> np.ndarray:
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)

    rows = []
    for case in bench.cases:
        stages = folder / f"{case.id}.stages"
        if not (stages / "stages.json").is_file():
            continue
        record = json.loads((stages / "stages.json").read_text())
        image = png(Path(case.reference[0]))
        audio = read_audio(case.audio)
        length = pipe.window_length(system.generate)
        cond = pipe.prepare(image, audio, case.instruction, system.generate, token_frames=record["frames"] + length)
        scorer = KeyframeScorer(image, cond.window, pipe.detector)
        truth = read_frames(case.ground_truth) if case.ground_truth else None
        for k, key in enumerate(record["keyframes"][1:], start=1):
            p = key["frame"]
            before = stages / "keyframes" / f"blueprint_{p:06d}.png"
            face = png(before if before.is_file() else stages / "keyframes" / f"key_{p:06d}.png")
            sub = next(s for s in record["subclips"] if s["start"] == p)  # the sub-clip it starts: its shot
            shot = pipe.with_prompt(cond, sub["prompt"], sub.get("negative", ""))
            faces = {"blueprint": face}
            for s in args.strengths:
                faces[s] = refine_keyframe(pipe, shot, face, p, k, s, system.generate)
            row = {"case": case.id, "frame": p}
            for name, f in faces.items():
                m = {"identity": scorer.identity(f), "sharpness": scorer.sharpness(f)}
                if truth is not None and p < len(truth):
                    psnr, ssim = frame_scores(f[None], crop(truth[p], cond.window, f.shape[0])[None])
                    m.update(psnr=float(psnr[0]), ssim=float(ssim[0]))
                row[str(name)] = m
            rows.append(row)
            print(json.dumps(row), flush=True)

    names = ["blueprint"] + [str(s) for s in args.strengths]
    print(f"\n{len(rows)} keyframes of {args.system} on {args.benchmark}")
    print(f"{'keyframes':>10} {'identity':>9} {'found':>7} {'paired Δid':>10} {'sharpness':>10} {'psnr':>7} {'ssim':>7}")
    summary = {}
    for name in names:
        def mean(metric):
            v = [r[name][metric] for r in rows if r[name].get(metric) is not None]
            return float(np.mean(v)) if v else float("nan")

        paired = [r[name]["identity"] - r["blueprint"]["identity"] for r in rows
                  if r[name]["identity"] is not None and r["blueprint"]["identity"] is not None]
        summary[name] = {m: mean(m) for m in ("identity", "sharpness", "psnr", "ssim")}
        summary[name].update(found=sum(r[name]["identity"] is not None for r in rows),
                             paired_identity_change=float(np.mean(paired)) if paired else float("nan"))
        s = summary[name]
        print(f"{name:>10} {s['identity']:9.4f} {s['found']:4d}/{len(rows):<2d} {s['paired_identity_change']:10.4f} "
              f"{s['sharpness']:10.1f} {s['psnr']:7.2f} {s['ssim']:7.4f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
