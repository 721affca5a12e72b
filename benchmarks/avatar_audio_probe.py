"""Does the trained avatar model use its audio? (issue 14's lip-sync diagnosis)

On windows of the benchmark cases' clips (held out of the shards, as the shards' split.json records them), the
flow loss on the latent mouth box with each window's own audio, another window's audio and the null audio, at
the same noise (kling.train.avatar.audio_reliance). A model that lip-syncs predicts the mouth better from its own
audio: `gain` > 0. Reads a finished `make demo` ($KLING_HOME, default ./.kling).

    KLING_HOME=.kling python benchmarks/avatar_audio_probe.py [--checkpoint DIR] [--per-clip 4]
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
    ap.add_argument("--checkpoint", type=Path, help="an avatar checkpoint or run folder (default: the trained one)")
    ap.add_argument("--per-clip", type=int, default=4, help="windows per held-out clip")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from kling.config import load_profile
    from kling.generate.avatar_pipeline import load_checkpoint
    from kling.paths import Layout
    from kling.train.avatar import audio_reliance
    from kling.train.avatar_shards import SPLIT, ShardConfig, held_out_windows

    torch.set_num_threads(args.threads)
    layout, profile = Layout.default(), load_profile()
    split = json.loads((layout.training("avatar_shards") / SPLIT).read_text())
    windows = held_out_windows(layout.curation(profile.name), set(split["held_out"]), ShardConfig(**split["config"]),
                               per_clip=args.per_clip)
    ckpt = load_checkpoint(args.checkpoint or layout.training("avatar"))
    result = audio_reliance(ckpt.model, ckpt.vae, windows)
    print(json.dumps({"checkpoint": str(ckpt.folder), "checkpoint_sha256": ckpt.sha256} | result, indent=1))


if __name__ == "__main__":
    main()
