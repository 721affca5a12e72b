"""Can the video VAE decode windows stitched in latent space? (issue 15's stitching)

The cascade joins a sub-clip's windows in latent space and decodes them as one causal stream. On 33-frame
windows of the benchmark cases' clips (held out of the shards), each VAE encodes four 9-frame windows on their
own, as the generator makes them, and decodes them (a) window by window, joined at their shared frame, and
(b) stitched in latent space; and (c) encodes and decodes the 33 frames as one stream. Reported: the mean
error against the real frames, and how much more the picture changes at the window joins (and within
windows) than the real video does (grey levels). Reads a finished `make demo` ($KLING_HOME).

    KLING_HOME=.kling python benchmarks/vae_stream.py [--vae DIR ...] [--per-clip 2]
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
    ap.add_argument("--vae", type=Path, nargs="+", help="diffusers-format VAE folders (default: the trained one)")
    ap.add_argument("--per-clip", type=int, default=2, help="33-frame windows per held-out clip")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import dataclasses

    import numpy as np
    import torch

    from kling.config import load_profile
    from kling.models.vae import decode, encode, load_vae, stitch_latents, to_frames, to_video
    from kling.paths import Layout
    from kling.train.avatar_shards import SPLIT, ShardConfig, held_out_windows
    from kling.train.runs import LATEST

    torch.set_num_threads(args.threads)
    layout, profile = Layout.default(), load_profile()
    split = json.loads((layout.training("avatar_shards") / SPLIT).read_text())
    window = split["config"]["frames"]
    hop, n = window - 1, 4
    cfg = dataclasses.replace(ShardConfig(**split["config"]), frames=1 + n * hop)
    clips = [w["frames"] for w in held_out_windows(layout.curation(profile.name), set(split["held_out"]), cfg,
                                                    args.per_clip)]
    folders = args.vae or [Path(json.loads((layout.training("avatar_vae") / LATEST).read_text())["dir"]) / "vae"]
    joins = [hop * k for k in range(1, n)]

    def change(x):  # mean absolute change from each frame to the next
        return np.abs(np.diff(x.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))

    report = {}
    for folder in folders:
        vae, rows = load_vae(folder).eval(), {}
        for real in clips:
            with torch.no_grad():
                lat = [encode(vae, to_video(real[s: s + window])) for s in range(0, n * hop, hop)]
                ways = {"window by window": np.concatenate([to_frames(decode(vae, z))[(i > 0):] for i, z in enumerate(lat)]),
                        "stitched in latents": to_frames(decode(vae, stitch_latents(lat))),
                        "one stream": to_frames(decode(vae, encode(vae, to_video(real))))}
            for way, x in ways.items():
                excess = change(x) - change(real)
                r = rows.setdefault(way, {"error": [], "join_excess": [], "within_excess": []})
                r["error"].append(float(np.abs(x.astype(np.float32) - real).mean()))
                r["join_excess"].append(float(excess[joins].mean()))
                r["within_excess"].append(float(np.delete(excess, joins).mean()))
        report[str(folder)] = {way: {k: round(float(np.mean(v)), 2) for k, v in r.items()} for way, r in rows.items()}
        print(f"{folder} ({len(clips)} held-out clips of {cfg.frames} frames)")
        for way, r in report[str(folder)].items():
            print(f"  {way:20s} error {r['error']:6.2f}   join excess {r['join_excess']:6.2f}   "
                  f"within excess {r['within_excess']:6.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
