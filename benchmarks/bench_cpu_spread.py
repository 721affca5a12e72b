"""How far the demo's numbers move on another CPU, and what the regression gate says there.

torch, oneDNN, numpy and OpenCV pick their kernels from the CPU's vector units, so the same recipe (data,
seed, configuration) trains the demo's sync expert to slightly different weights on an AVX2 machine, an
AVX-512 Xeon and a Zen 4 (float sums in another order), and every number it scores moves a little. This
script emulates other CPUs on one machine with the libraries' own switches and runs the whole demo
(`kling demo`: curation, training, evaluation) once per emulated CPU, each in its own fresh $KLING_HOME:

    native        the machine as it is
    avx2          ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2, numpy without X86_V4 / AVX512_ICL,
                  OpenCV without AVX512-SKX: an AVX2-only machine
    avx512_core   ONEDNN_MAX_CPU_ISA=AVX512_CORE: AVX-512 without VNNI / BF16 kernels (an older Xeon)
    default       ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41, numpy baseline, OpenCV without
                  AVX / AVX2 / AVX-512: no wide vectors at all

For every variant it prints, per benchmark, the largest move of each metric against `native` (over the
aggregates per system and backbone) and the verdict of `kling regress` against each tracked baseline
(reports/baselines/*.parquet: demo, demo_1min) with the tracked tolerances. The tolerances in
reports/baselines/tolerances.yaml must cover these moves.

    .venv/bin/python benchmarks/bench_cpu_spread.py [--variants native avx2 ...] [--keep DIR] [--json OUT]

With --keep, a variant whose $KLING_HOME (DIR/<variant>/kling_home) already holds a leaderboard is not run
again: link a clean CI workspace there as `native` to compare against it.

About 45 minutes per variant on 2 idle cores (the whole demo, its 1-minute cases included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NO_AVX512_NUMPY = "X86_V4 AVX512_ICL AVX512_SPR"
VARIANTS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "NPY_DISABLE_CPU_FEATURES": NO_AVX512_NUMPY, "OPENCV_CPU_DISABLE": "AVX512-SKX"},
    "avx512_core": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                "NPY_DISABLE_CPU_FEATURES": "X86_V3 " + NO_AVX512_NUMPY,
                "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2,FMA3,AVX,FP16"},
}


def run_demo(name: str, home: Path) -> float:
    env = {**os.environ, **VARIANTS[name], "KLING_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    kling = Path(sys.executable).with_name("kling")
    start = time.perf_counter()
    log = home.parent / f"{name}.log"
    with open(log, "w") as fh:
        rc = subprocess.run([str(kling), "demo"], env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO).returncode
    # The demo's last step is the blocking gate: a failure there still leaves the leaderboard to compare.
    print(f"[{name}] kling demo exit {rc} in {time.perf_counter() - start:.0f} s (log {log})", flush=True)
    return time.perf_counter() - start


def aggregates(home: Path):
    from eval.leaderboard.regress import summarise
    from eval.leaderboard.store import load_rows

    return summarise(load_rows(home / "data" / "leaderboard", latest=True))


def spread(ref, cur) -> dict[str, dict[str, float]]:
    """Per benchmark, the largest |move| of each metric over (system, backbone), cur against ref."""
    out: dict[str, dict[str, float]] = {}
    for key, r in ref.iterrows():
        if key not in cur.index or r["value"] != r["value"]:
            continue
        c = cur.loc[key]["value"]
        if c == c:
            moves = out.setdefault(r["benchmark"], {})
            moves[r["metric"]] = max(moves.get(r["metric"], 0.0), abs(float(c) - float(r["value"])))
    return out


def gates(home: Path) -> dict[str, str]:
    """`kling regress`'s verdict per tracked baseline (as .ci/run loops over reports/baselines/*.parquet)."""
    from eval.leaderboard.regress import compare_to_baseline, load_tolerances
    from eval.leaderboard.store import load_rows, read_any
    from kling.paths import baselines_dir

    out = {}
    for base in sorted(Path(baselines_dir()).glob("*.parquet")):
        report = compare_to_baseline(load_rows(home / "data" / "leaderboard", latest=True, benchmark=base.stem),
                                     read_any(base, latest=False), load_tolerances(base.parent / "tolerances.yaml"))
        out[base.stem] = report.format()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--keep", type=Path, help="run in this folder and keep every variant's $KLING_HOME")
    ap.add_argument("--json", type=Path, help="write the spreads and verdicts here")
    args = ap.parse_args()
    variants = ["native"] + [v for v in args.variants if v != "native"]
    root = args.keep or Path(tempfile.mkdtemp(prefix="kling-cpu-spread-"))
    homes, seconds = {}, {}
    for v in variants:
        homes[v] = root / v / "kling_home"
        if not (homes[v] / "data" / "leaderboard").is_dir():
            homes[v].mkdir(parents=True, exist_ok=True)
            seconds[v] = round(run_demo(v, homes[v]), 1)
    ref = aggregates(homes["native"])
    result = {"variants": {}, "seconds": seconds}
    for v in variants:
        moved = spread(ref, aggregates(homes[v])) if v != "native" else {}
        verdicts = gates(homes[v])
        result["variants"][v] = {"env": VARIANTS[v], "max_move": moved,
                                 "gate": {b: t.splitlines()[-1] for b, t in verdicts.items()},
                                 "gate_failures": {b: t.splitlines()[:-1] for b, t in verdicts.items()}}
        print(f"\n== {v} ({' '.join(f'{k}={x}' for k, x in VARIANTS[v].items()) or 'as the machine is'})")
        for bench, moves in sorted(moved.items()):
            print(f"  {bench}")
            for metric, d in sorted(moves.items()):
                if d > 0:
                    print(f"    {metric:<28} max |move| {d:.6g}")
        for bench, verdict in verdicts.items():
            print(f"  gate {bench}: " + verdict.replace("\n", "\n        "))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
