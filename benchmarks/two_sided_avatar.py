"""The demo's avatar model taught a second side, for the cascade's low-resolution blueprint (issue 15's spatial
half: CascadeConfig.blueprint_side needs a model that has seen that side).

Continues the finished demo's avatar run (its weights, EMA and optimiser at its last step) for `--steps` more
steps, each batch drawn at one of `--sides` (kling.train.avatar's `sides`), into a folder of its own under
Layout.training("avatar_two_sided"); the demo's run is not touched. Then measures, on the windows the shards hold
out (the benchmark cases' clips), the flow loss on the mouth with each window's own audio and with another's
(kling.train.avatar.audio_reliance) at every side, before and after: what the extra steps taught, on data they
never saw. Reads a finished `make demo` ($KLING_HOME, default ./.kling); ~0.2 s a step on 2 cores.

    KLING_HOME=.kling python benchmarks/two_sided_avatar.py [--steps 600] [--sides 32 64] [--json out.json]

The checkpoint it prints is what the spatial cascade runs on:
    KLING_HOME=.kling python benchmarks/cascade_bars.py --checkpoint DIR --systems cascade.tiny cascade.tiny.blueprint-32
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600, help="steps beyond the demo run's last")
    ap.add_argument("--sides", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--per-clip", type=int, default=4, help="held-out windows per clip")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    from kling.config import load_profile
    from kling.generate.avatar_pipeline import load_checkpoint
    from kling.paths import Layout
    from kling.train.avatar import AvatarTrainConfig, audio_reliance, samples_at_side, train_avatar
    from kling.train.avatar_shards import SPLIT, ShardConfig, held_out_windows
    from kling.train.runs import latest_step

    torch.set_num_threads(args.threads)
    layout, profile = Layout.default(), load_profile()
    source = load_checkpoint(layout.training("avatar"))  # the demo run's last step
    base = AvatarTrainConfig(**json.loads((source.folder / "meta.json").read_text())["config"])
    cfg = dataclasses.replace(base, steps=base.steps + args.steps, sides=tuple(args.sides), threads=args.threads)
    out = layout.training("avatar_two_sided") / (f"{source.folder.parent.name}-{source.folder.name}"
                                                 f"-sides{'-'.join(map(str, args.sides))}-plus{args.steps}")
    if latest_step(out) is None:  # start from a copy of the demo's last step: train_avatar resumes from it
        shutil.copytree(source.folder, out / source.folder.name)
    meta = train_avatar(layout.training("avatar_shards"), source.folder.parent / "vae", out, cfg,
                        progress=lambda step, loss: print(f"step {step} loss {loss:.4f}", flush=True)
                        if step % 100 == 0 else None)
    tuned = load_checkpoint(out)

    split = json.loads((layout.training("avatar_shards") / SPLIT).read_text())
    windows = held_out_windows(layout.curation(profile.name), set(split["held_out"]), ShardConfig(**split["config"]),
                               per_clip=args.per_clip)
    rows = {}
    for side in args.sides:
        at_side = samples_at_side(windows, side)
        for name, ckpt in (("demo", source), ("two-sided", tuned)):
            r = audio_reliance(ckpt.model, ckpt.vae, at_side)
            rows[f"{name} @ {side} px"] = {"own": r["mouth_loss"]["own"], "other": r["mouth_loss"]["other"],
                                          "gain": r["gain"]}
            print(f"{name:>9} @ {side:>3} px: held-out mouth loss own {r['mouth_loss']['own']:.4f} "
                  f"other {r['mouth_loss']['other']:.4f} gain {r['gain']:+.3f}", flush=True)
    before = source.meta["history"][-1]["seconds"] if source.meta.get("history") else 0.0
    print(f"checkpoint: {tuned.folder} (sha256 {tuned.sha256[:12]}; {meta['seconds'] - before:.0f} s for the extra steps; "
          f"{len(windows)} held-out windows)")
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(tuned.folder), "sha256": tuned.sha256, "source": str(source.folder),
                                         "config": dataclasses.asdict(cfg), "held_out_windows": len(windows),
                                         "mouth_loss": rows}, indent=1))


if __name__ == "__main__":
    main()
