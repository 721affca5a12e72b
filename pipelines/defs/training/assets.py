"""Training assets: models trained on the curated data, written as checkpoints."""

import time

import dagster as dg

from kling.paths import Layout
from kling.train.sync_expert import NotEnoughClips, train_sync_expert
from pipelines.defs.curation.assets import SYNC_EXPERT_KEY, _refs
from pipelines.defs.curation.resources import CurationSettings



@dg.asset(key=SYNC_EXPERT_KEY, deps=[dg.AssetKey(["curation", "quality"])], group_name="training", kinds={"pytorch"})
def sync_expert(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """SyncNet's architecture trained self-supervised on the kept clips: the demo profile's lip-sync
    evaluator (rows labelled syncnet-expert-demo) and the curation stage's lip-sync filter. Resumes from
    its last checkpoint; the same clips and seed give the same weights."""
    from kling.curate.sources import source_identities
    from kling.train.sync_expert import TrainConfig

    profile, refs = _refs(curation)
    cfg = TrainConfig(**profile.section("training").get("sync_expert", {}))
    out = Layout.default().sync_expert
    start = time.perf_counter()
    try:
        meta = train_sync_expert(curation.workspace(), refs, out, cfg, sources=source_identities(profile, refs))
    except NotEnoughClips as exc:
        # Recorded, not raised: the expert's rows then say "unavailable: no checkpoint" with this reason.
        context.log.warning(f"sync expert not trained: {exc}")
        return dg.MaterializeResult(metadata={"status": "skipped", "reason": str(exc)})
    context.log.info(f"sync expert: step {meta.get('step')} on {len(meta['clips'])} clips")
    return dg.MaterializeResult(metadata={
        "checkpoint_dir": dg.MetadataValue.path(meta["dir"]),
        "step": meta.get("step"),
        "clips": len(meta["clips"]),
        "clip_ids": dg.MetadataValue.json(meta["clips"]),
        "train_config": dg.MetadataValue.json(meta["config"]),
        "final_loss": meta.get("history", [{}])[-1].get("loss") if meta.get("history") else None,
        "seconds": round(time.perf_counter() - start, 2),
    })
