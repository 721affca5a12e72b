"""Curation assets: a thin layer over kling.curate.steps (per-video steps) and its manifest."""

import time
from collections import Counter

import dagster as dg

from kling.curate import steps
from kling.curate.sources import profile_videos
from pipelines.defs.curation.partitions import video_partitions
from pipelines.defs.curation.resources import CurationSettings

SOURCE_KEY = dg.AssetKey(["curation", "source_videos"])
# Asset name of each per-video step (the asset graph of the issue: raw videos -> normalised clips -> ...).
STEP_ASSETS = {
    "normalise": "normalised_clips",
    "shots": "shots",
    "face_tracks": "face_tracks",
    "speech": "speech",
    "quality": "quality",
    "lip_sync": "lip_sync",
}
# lip_sync runs after the sync expert is trained on the quality-kept clips, so it is its own run.
STEP_GROUPS = {"lip_sync": "curation_lipsync"}
SYNC_EXPERT_KEY = dg.AssetKey(["training", "sync_expert"])
MANIFEST_KEY = dg.AssetKey(["curation", "curated_clips"])


def _refs(settings: CurationSettings):
    profile = settings.load()
    return profile, profile_videos(profile)


@dg.asset(key=SOURCE_KEY, group_name="curation_source", kinds={"video"})
def source_videos(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """The raw videos of the profile's source. On the demo profile, generates the offline demo corpus
    (idempotent: nothing is rewritten when the recipe is unchanged)."""
    profile = curation.load()
    start = time.perf_counter()
    meta: dict = {"profile": profile.name, "profile_hash": profile.hash}
    if profile.uses_demo_corpus:
        from kling.demo import generate_corpus

        manifest = generate_corpus(profile.source_dir())
        meta["demo_recipe_hash"] = str(getattr(manifest, "recipe_hash", ""))
    _, refs = _refs(curation)
    meta.update({
        "source_dir": dg.MetadataValue.path(str(profile.source_dir())),
        "videos": len(refs),
        "video_ids": dg.MetadataValue.json([r.video_id for r in refs]),
        "seconds": round(time.perf_counter() - start, 2),
    })
    return dg.MaterializeResult(metadata=meta)


def _step_asset(step: str, name: str, deps: list[dg.AssetKey], group: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["curation", name]),
        deps=deps,
        partitions_def=video_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=group,
        description=(steps.__dict__[f"_do_{step}"].__doc__ or f"curation step {step}, per video"),
        kinds={"parquet"} if step != "normalise" else {"video"},
    )
    def _asset(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
        profile, refs = _refs(curation)
        by_id = {r.video_id: r for r in refs}
        ws = curation.workspace()
        status, reasons, seconds = Counter(), Counter(), 0.0
        for key in context.partition_keys:
            ref = by_id.get(key)
            if ref is None:
                raise dg.Failure(f"partition {key} has no source video any more (reload the code location)")
            record = steps.run_video_step(step, ws, ref, profile)
            status["cached" if record.cached else record.status] += 1
            if not record.ok:
                reasons[record.reason] += 1
            seconds += 0 if record.cached else record.seconds
            context.log.info(f"{step} {key}: {record.status}{' (cached)' if record.cached else ''}"
                             f"{'' if record.ok else f' [{record.reason}]'}")
        return dg.MaterializeResult(metadata={
            "videos": len(context.partition_keys),
            "ok": status["ok"],
            "cached": status["cached"],
            "rejected": status["rejected"],
            "errors": status["error"],
            "rejections_by_reason": dg.MetadataValue.json(dict(reasons)),
            "compute_seconds": round(seconds, 2),
            "config_hash": steps.step_config_hash(profile, step),
            "output_dir": dg.MetadataValue.path(str(ws.root / step)),
        })

    _asset.__name__ = name
    return _asset


def _build_step_assets() -> list[dg.AssetsDefinition]:
    assets = []
    for step in steps.STEPS:
        deps = [SOURCE_KEY] if step == "normalise" else [dg.AssetKey(["curation", STEP_ASSETS[u]]) for u in steps.UPSTREAM[step]]
        if step == "lip_sync":
            deps.append(SYNC_EXPERT_KEY)
        assets.append(_step_asset(step, STEP_ASSETS[step], deps, STEP_GROUPS.get(step, "curation_videos")))
    return assets


step_assets = _build_step_assets()


@dg.asset(key=MANIFEST_KEY, deps=[dg.AssetKey(["curation", "lip_sync"])], group_name="curation_dataset", kinds={"parquet"})
def curated_clips(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """The curated manifest (Parquet): every candidate clip, kept or rejected with its reasons, and every
    video rejected before the clip stage."""
    profile, refs = _refs(curation)
    path, table, summary = steps.write_manifest(curation.workspace(), refs, profile)
    context.log.info(f"manifest: {summary}")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "videos": summary["videos"],
        "clips": summary["clips"],
        "kept": summary["kept"],
        "rejected": summary["rejected"],
        "rejections_by_reason": dg.MetadataValue.json(summary["rejections_by_reason"]),
        "kept_seconds": summary["kept_seconds"],
        "config_hash": summary["config_hash"],
        "dagster/row_count": len(table),
    })
