"""Lip sync: SyncNet (faithful to joonson/syncnet_python) and the self-trained sync expert, one scoring engine.

Curation's lip-sync filter and evaluation's Sync-C / Sync-D both score through `evaluator_for`.
"""

from __future__ import annotations

from pathlib import Path

SYNC_BACKBONES = ("syncnet_v2", "expert")
NO_EXPERT = "<no sync expert checkpoint: materialize training/sync_expert>"


def evaluator_for(backbone: str, weights: str | Path | None = None):
    """The SyncEvaluator of a backbone: "syncnet_v2" (official weights: `weights` or the registry's file) or
    "expert" (a trained checkpoint folder or file). Missing weights give an evaluator whose every result is
    unavailable with the reason, never random weights."""
    from kling.perception.sync.expert import expert_evaluator
    from kling.perception.sync.pipeline import SyncEvaluator

    if backbone == "expert":
        return expert_evaluator(weights or NO_EXPERT)
    if backbone == "syncnet_v2":
        return SyncEvaluator.official(weights if weights and Path(weights).is_file() else None)
    raise ValueError(f"unknown sync backbone {backbone!r} (known: {', '.join(SYNC_BACKBONES)})")
