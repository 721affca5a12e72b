"""Curation captions: one Parquet of structured captions per source video (kling.curate.captions)."""

import time
from collections import Counter

import dagster as dg

from kling.curate.captions import CaptionError, write_captions
from kling.llm import LLMClient, llm_config
from pipelines.defs.curation.partitions import video_partitions
from pipelines.defs.curation.resources import CurationSettings

CAPTIONS_KEY = dg.AssetKey(["curation", "captions"])


@dg.asset(key=CAPTIONS_KEY, deps=[dg.AssetKey(["curation", "quality"]), dg.AssetKey(["curation", "lip_sync"])],
          partitions_def=video_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
          group_name="curation_captions", kinds={"parquet"})
def captions(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """Per clip: appearance, emotion, head motion, gaze, gestures, camera, scene, lighting, speech, people and a
    paragraph, each field with its source (measured, vlm, llm) and confidence. Videos that curation rejected
    before the clip stage are skipped with their reason."""
    profile = curation.load()
    ws = curation.workspace()
    cfg = llm_config(profile.section("llm"))
    client = LLMClient(cfg) if cfg.backend != "offline" else None
    status, reasons, clips = Counter(), Counter(), 0
    start = time.perf_counter()
    for key in context.partition_keys:
        quality = ws.load("quality", key)
        if quality is None or not quality.ok:
            why = "quality step has not run" if quality is None else f"rejected: {quality.reason}"
            status["skipped"] += 1
            reasons[why] += 1
            context.log.info(f"captions {key}: skipped ({why})")
            continue
        try:
            path = write_captions(ws, key, client)
        except CaptionError as exc:
            status["failed"] += 1
            reasons[exc.args[0][:120]] += 1
            context.log.warning(f"captions {key}: failed: {exc}")
            continue
        import pyarrow.parquet as pq

        clips += pq.read_metadata(path).num_rows
        status["ok"] += 1
    if status["failed"]:
        raise dg.Failure(f"captions failed on {status['failed']} videos", metadata={
            "failures": dg.MetadataValue.json(dict(reasons))})
    return dg.MaterializeResult(metadata={
        "videos": len(context.partition_keys), "ok": status["ok"], "skipped": status["skipped"],
        "skip_reasons": dg.MetadataValue.json(dict(reasons)), "clips": clips, "backend": cfg.backend,
        "seconds": round(time.perf_counter() - start, 2),
        "output_dir": dg.MetadataValue.path(str(ws.root / "captions")),
    })
