"""The cascade against chunk-after-chunk generation on the demo's 1-minute cases (issue 15's bars), with the
project's own evaluation, and the cascade's ablations. `make demo` runs the two main systems and the still image on
the same cases (its `demo_1min` benchmark); the ablations cost ~4 min a system on 2 cores, so they live here.

Reads a finished `make demo` ($KLING_HOME): its demo corpus, trained avatar model and profile. Builds the
demo recipe's long cases (chained speech of one identity, no ground truth video) in a temporary folder,
directs them (the profile's LLM backend; offline rules by default), generates each configured system and the
still-reference control (the lip-sync bar's reference; the long cases have no ground truth for the other controls),
and evaluates every one with eval.suite as `eval/runs` does. Prints one table: per system, the metrics that
speak to drift, joins and lip sync, and each bar with whether it holds. A report, not a test.

    KLING_HOME=.kling python benchmarks/cascade_bars.py [--classes 1min] [--cases 2] [--out bars.json]

`--classes short --cases 9`: the demo's short cases instead, which have ground truth (SSIM, PSNR, LMD).
`--checkpoint DIR`: another avatar model (cascade.tiny.blueprint-32 needs one trained at 32 px too:
benchmarks/two_sided_avatar.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SYSTEMS = {  # kling.generate.system.SystemConfig as the profile writes it
    "chunked.tiny": {"steps": 10, "anchor": "previous"},
    "avatar.tiny": {"steps": 10, "anchor": "reference"},
    "cascade.tiny": {"steps": 10, "anchor": "reference", "cascade": {"workers": 2, "super_resolution": True}},
    "cascade.tiny.no-transitions": {"steps": 10, "anchor": "reference",
                                    "cascade": {"workers": 2, "super_resolution": True, "transitions": False}},
    "cascade.tiny.no-director": {"steps": 10, "anchor": "reference", "storyline": False,
                                 "cascade": {"workers": 2, "super_resolution": True}},
    "cascade.tiny.no-super-resolution": {"steps": 10, "anchor": "reference", "cascade": {"workers": 2}},
    "cascade.tiny.latent-stitch": {"steps": 10, "anchor": "reference",
                                   "cascade": {"workers": 2, "super_resolution": True, "stitch": "latents"}},
    "cascade.tiny.keyframe-refine": {"steps": 10, "anchor": "reference",
                                     "cascade": {"workers": 2, "super_resolution": True, "keyframe_refine": 0.2}},
    # needs a model trained at 32 px too (--checkpoint from benchmarks/two_sided_avatar.py)
    "cascade.tiny.blueprint-32": {"steps": 10, "anchor": "reference",
                                  "cascade": {"workers": 2, "super_resolution": True, "blueprint_side": 32,
                                              "keyframe_refine": 0.5}},
}
METRICS = ["sync_c", "sync_d", "sync_av_offset", "csim", "lmd_face_rate", "transition_max_z", "transition_worst_z",
           "sharpness_drift_slope", "appearance_consistency_first_last", "appearance_consistency_min_far",
           "storyline_adherence", "ssim", "psnr", "lmd"]  # the last three need ground truth: `--classes short`


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", nargs="+", default=["1min"])
    ap.add_argument("--cases", type=int, default=2, help="long cases to use (the recipe's first ones)")
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    ap.add_argument("--checkpoint", type=Path, help="the avatar model (default: the demo's trained one)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import pandas as pd

    from eval.benchmark_recipes import build_demo_benchmark
    from eval.control_videos import generate_controls
    from eval.leaderboard.controls import STILL_REFERENCE
    from eval.leaderboard.schema import RunContext
    from eval.runs import eval_settings
    from eval.suite import evaluate_system
    from eval.systems import SystemDescriptor, load_system, write_descriptor
    from kling.config import load_profile
    from kling.demo.corpus import CorpusManifest
    from kling.director.batch import CaseInput, direct_cases, read_storylines
    from kling.generate.system import SystemConfig, generate_cases
    from kling.llm.config import llm_config
    from kling.paths import Layout

    layout, profile = Layout.default(), load_profile()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bench = build_demo_benchmark(CorpusManifest.load(layout.demo_corpus), tmp / "bench", long_classes=args.classes)
        bench.cases = [c for c in bench.cases if c.duration_class in args.classes][: args.cases]
        bench.save()
        t = time.perf_counter()
        direct_cases([CaseInput(c.id, tuple(c.reference), (c.audio,), c.instruction) for c in bench.cases],
                     tmp / "storylines", llm_config(profile.section("llm")))
        storylines = read_storylines(tmp / "storylines")
        timings = {"direct": round(time.perf_counter() - t, 1)}
        settings = eval_settings(profile, layout)
        rows, keyframes = [], {}
        controls = generate_controls(bench, tmp / "controls").folders
        for name in args.systems + [STILL_REFERENCE]:
            folder = controls[name] if name == STILL_REFERENCE else tmp / "systems" / name
            t = time.perf_counter()
            if name != STILL_REFERENCE:
                generate_cases(args.checkpoint or layout.training("avatar"), bench.cases, folder,
                               SystemConfig.from_profile(SYSTEMS[name]), storylines=storylines,
                               super_resolution=layout.training("super_resolution"))
                write_descriptor(folder, SystemDescriptor(name=name, version="bench", kind="model",
                                                          source="benchmarks/cascade_bars.py"))
            timings[f"generate {name}"] = round(time.perf_counter() - t, 1)
            records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.stages/stages.json"))]
            if records:  # a cascade's seconds per stage summed over the cases, and its keyframes' identity
                timings[f"stages {name}"] = {k: round(sum(r["stage_seconds"][k] for r in records), 1)
                                             for k in records[0]["stage_seconds"]}
                keys = [k for r in records for k in r["keyframes"][1:]]
                for what, values in (("chosen", [(k["scores"] or {}).get("identity") for k in keys]),
                                     ("redrawn", [k["refined"]["identity"] for k in keys if "refined" in k])):
                    found = [v for v in values if v is not None]
                    if found:
                        keyframes[f"{name} {what}"] = {"identity": round(sum(found) / len(found), 4),
                                                       "faces found": f"{len(found)} / {len(keys)}"}
            t = time.perf_counter()
            result = evaluate_system(bench, load_system(folder), settings, RunContext.new(name, bench.name, settings.hash),
                                     storylines=storylines)
            timings[f"evaluate {name}"] = round(time.perf_counter() - t, 1)
            rows.append(result.rows.to_pandas())
            print(f"{name}: generated and evaluated ({timings[f'generate {name}']} s + {timings[f'evaluate {name}']} s)",
                  flush=True)
    df = pd.concat(rows)
    whole = df[(df["clip_id"] != "__all__") & (df["window"] == "all") & df["metric"].isin(METRICS) & df["value"].notna()]
    table = whole.groupby(["system", "metric"])["value"].mean().unstack()
    print(table.round(4).to_string())
    print("timings (s):", json.dumps(timings))
    print("keyframes (identity: dlib cosine to the reference):", json.dumps(keyframes))
    if args.out:  # every figure, for the notes
        args.out.write_text(json.dumps({"cases": [c.id for c in bench.cases], "timings_s": timings, "keyframes": keyframes,
                                        "means": json.loads(table.to_json(orient="index"))}, indent=2))


if __name__ == "__main__":
    main()
