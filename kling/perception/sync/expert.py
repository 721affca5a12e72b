"""The self-trained sync expert as a scoring backbone: SyncNet's architecture, narrower and on small crops.

Why it exists: the official weights cannot be downloaded offline, and the demo profile still needs a
lip-sync evaluator and a curation filter. Its numbers are labelled ``syncnet-expert-demo`` with their own
protocol version and are never ranked with official ``syncnet_v2`` numbers. Training lives in
kling.train.sync_expert; this module loads a trained checkpoint and defines its input protocol.

Input protocol (differs from the official net on purpose, for CPU training): the same reference face
crop (kling.perception.sync.crop, 224x224) downscaled to ``lip_size`` (64) with area interpolation, BGR
order like the official; audio, MFCC, 5-frame / 20-MFCC windows and the offset scoring are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from kling.perception.sync.engine import FusedSyncNet
from kling.perception.sync.model import SyncNetConfig, load_syncnet
from kling.perception.sync.score import EXPERT_PROTOCOL_VERSION

EXPERT_NAME = "syncnet-expert-demo"
EXPERT_CONFIG = SyncNetConfig(width=0.25, fc_dim=128, lip_size=64)
CHECKPOINT = "expert.pt"  # weights only (what evaluators load)
STATE = "train_state.pt"  # weights + optimiser (what training resumes from)
META = "expert.json"
LATEST = "latest.json"  # in a training root: points at the folder of the last training run


def prep_crops(crops: np.ndarray, lip_size: int = EXPERT_CONFIG.lip_size) -> np.ndarray:
    """224x224 RGB face crops (n, 224, 224, 3) -> the expert's input frames (n, lip_size, lip_size, 3)."""
    if len(crops) == 0:
        return np.zeros((0, lip_size, lip_size, 3), np.uint8)
    return np.stack([cv2.resize(c, (lip_size, lip_size), interpolation=cv2.INTER_AREA) for c in crops])


def latest_checkpoint_dir(root: str | Path) -> Path | None:
    """The checkpoint folder of the last training run under `root`, if any."""
    pointer = Path(root) / LATEST
    return Path(json.loads(pointer.read_text())["dir"]) if pointer.exists() else None


def load_expert(out_dir_or_file: str | Path):
    """SyncBackbone of a trained expert (a checkpoint folder, or its expert.pt with expert.json beside it)."""
    from kling.perception.sync.pipeline import SyncBackbone
    from kling.weights import sha256_of

    p = Path(out_dir_or_file)
    ckpt = p / CHECKPOINT if p.is_dir() else p
    meta_path = ckpt.parent / META
    if not ckpt.is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"no sync expert checkpoint at {p} (train it: the sync-expert training asset)")
    meta = json.loads(meta_path.read_text())
    arch = SyncNetConfig(**meta["arch"])
    net = load_syncnet(ckpt, arch)
    weights_sha = sha256_of(ckpt)
    return SyncBackbone(name=EXPERT_NAME, sha256=backbone_identity(meta, weights_sha), net=FusedSyncNet(net),
                        protocol_version=EXPERT_PROTOCOL_VERSION, prep=lambda c: prep_crops(c, arch.lip_size),
                        meta={"step": meta.get("step"), "path": str(ckpt), "weights_sha256": weights_sha,
                              "recipe": meta.get("recipe")})


def backbone_identity(meta: dict, weights_sha256: str) -> str:
    """The `backbone_sha256` its numbers carry: the sha256 of its training recipe (data, configuration,
    trainer version; kling.train.sync_expert.expert_recipe), prefixed "recipe:", so that the same recipe
    trained on another CPU stays comparable (its weights differ in the last bits); the weight file's own
    sha256 for a checkpoint that records no recipe."""
    return f"recipe:{meta['recipe_hash']}" if meta.get("recipe_hash") else weights_sha256


def expert_evaluator(out_dir_or_file: str | Path, batch_size: int = 64):
    """SyncEvaluator on the expert; missing checkpoint -> every result unavailable with the reason."""
    from kling.perception.sync.pipeline import SyncEvaluator

    try:
        return SyncEvaluator(load_expert(out_dir_or_file), batch_size=batch_size)
    except (FileNotFoundError, ValueError) as exc:
        return SyncEvaluator(None, batch_size, unavailable=str(exc))
