"""The avatar model's bars (issue 14), measured with the project's own evaluation on the demo's held-out cases.

Reads a finished `make demo` ($KLING_HOME, default ./.kling): the leaderboard's aggregates of the generated
system (default cascade.tiny) and the controls, then generates the same cases with the same model at
initialisation (kling.train.avatar.initial_checkpoint: the same seed and VAE, step 0) and scores both with
eval.fidelity.fidelity_rows (PSNR and SSIM pixels-v3, LMD lmd-v2, as the suite does). Prints each bar with
its figures and whether it holds; no pass/fail exit code (a report, not a test).

    KLING_HOME=.kling python benchmarks/avatar_bars.py [--system cascade.tiny] [--out bars.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _agg(board: pd.DataFrame, system: str, metric: str, backbone: str | None = None) -> float | None:
    rows = board[(board["system"] == system) & (board["metric"] == metric) & (board["window"] == "all")]
    if backbone:
        rows = rows[rows["backbone"].str.startswith(backbone)]
    # "incomplete": the value over the cases that have one (a generated face not found in some cases)
    rows = rows[rows["status"].isin(["ok", "incomplete"])]
    return None if rows.empty else float(rows["value"].iloc[0])


def _coverage(board: pd.DataFrame, system: str, metric: str) -> str:
    rows = board[(board["system"] == system) & (board["metric"] == metric) & board["status"].isin(["ok", "incomplete"])]
    if rows.empty:
        return "no value"
    r = rows.iloc[0]
    return f"{int(r['n_cases'])} cases" + (f", missing {r['missing_cases']}" if r["status"] == "incomplete" else "")


def _case_values(store: Path, system: str, metric: str, backbone: str) -> list[float]:
    from eval.leaderboard.store import load_rows

    rows = load_rows(store)
    rows = rows[(rows["system"] == system) & (rows["metric"] == metric) & rows["backbone"].str.startswith(backbone)
                & (rows["status"] == "ok")]
    return [float(v) for v in rows["value"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", default="cascade.tiny")
    ap.add_argument("--benchmark", default="demo")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from eval.fidelity.evaluate import fidelity_rows
    from eval.runs import load_prepared
    from kling.config import load_profile
    from kling.director.batch import read_storylines
    from kling.generate.avatar_pipeline import load_checkpoint
    from kling.generate.system import SystemConfig, generate_cases
    from kling.paths import Layout
    from kling.train.avatar import AvatarTrainConfig, initial_checkpoint

    layout, profile = Layout.default(), load_profile()
    board = pd.read_parquet(layout.reports / "leaderboard.parquet")
    bench = load_prepared(profile, args.benchmark, layout)
    config = SystemConfig.from_profile(profile.section("generation")["systems"][args.system])
    trained = load_checkpoint(layout.training("avatar"))
    gen, still, other = args.system, "control.still_reference", "control.other_identity"
    figures: dict[str, dict] = {}

    def bar(name: str, ours, ref, better: str, ref_name: str) -> None:
        ok = None if ours is None or ref is None else (ours > ref if better == "higher" else ours < ref)
        figures[name] = {"ours": ours, ref_name: ref, "holds": ok}

    bar("sync_c (expert) above the still control", _agg(board, gen, "sync_c", "syncnet-expert"),
        _agg(board, still, "sync_c", "syncnet-expert"), "higher", "still")
    offsets = [abs(v) for v in _case_values(layout.store, gen, "sync_av_offset", "syncnet-expert")]
    figures["median |AV offset| <= 1 frame"] = {"ours": statistics.median(offsets) if offsets else None,
                                                 "holds": bool(offsets) and statistics.median(offsets) <= 1}
    bar("LMD below the still control", _agg(board, gen, "lmd"), _agg(board, still, "lmd"), "lower", "still")
    bar("CSIM (dlib) above the other-identity control", _agg(board, gen, "csim", "dlib"),
        _agg(board, other, "csim", "dlib"), "higher", "other_identity")

    # the same model at initialisation, the same cases and configuration
    with tempfile.TemporaryDirectory() as tmp:
        init = initial_checkpoint(trained.folder.parent / "vae", Path(tmp) / "init",
                                  AvatarTrainConfig(**trained.meta["config"]))
        generate_cases(init, bench.cases, Path(tmp) / "videos", config,
                       storylines=read_storylines(layout.storylines_dir(args.benchmark)))
        scores: dict[str, dict[str, list[float]]] = {"init": {}, "trained": {}}
        for case in bench.cases:
            if case.ground_truth is None:
                continue
            for who, folder in (("init", Path(tmp) / "videos"), ("trained", layout.systems_dir(args.benchmark) / gen)):
                video = folder / f"{case.id}.mp4"
                if not video.is_file():
                    continue
                for r in fidelity_rows(video, case.ground_truth, case.id):
                    if r["status"] == "ok" and r["metric"] in ("psnr", "ssim", "lmd"):
                        scores[who].setdefault(r["metric"], []).append(float(r["value"]))
    for metric, better in (("psnr", "higher"), ("ssim", "higher"), ("lmd", "lower")):
        mean = {w: statistics.fmean(v[metric]) if v.get(metric) else None for w, v in scores.items()}
        bar(f"{metric} better than at initialisation", mean["trained"], mean["init"], better, "initialisation")
    figures["fvd"] = {"holds": None, "note": "I3D weights absent offline: FVD unavailable"} \
        if _agg(board, gen, "fvd") is None else {"ours": _agg(board, gen, "fvd")}

    for metric in ("sync_c", "lmd", "csim"):
        figures[f"coverage of {metric}"] = {"ours": _coverage(board, gen, metric), "holds": None}
    for name, f in figures.items():
        state = {True: "holds", False: "MISSED", None: "n/a"}[f.get("holds")]
        vals = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in f.items() if k != "holds")
        print(f"{state:7s} {name}: {vals}")
    if args.out:
        args.out.write_text(json.dumps({"system": gen, "checkpoint_sha256": trained.sha256, "bars": figures}, indent=2))


if __name__ == "__main__":
    main()
