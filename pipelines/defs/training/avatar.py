"""Avatar training assets: the shards written once from the kept curated clips, the video VAE, the avatar
model, the cascade's super-resolution network. Each trains into one folder per recipe under Layout.training(<model>) and is reused when nothing
changed (a re-materialization does no work)."""

import json
import time
from pathlib import Path

import dagster as dg

from kling.paths import Layout
from kling.train.avatar_shards import NoTrainingSamples
from kling.train.runs import loss_plot_markdown, sparkline
from pipelines.defs.curation.assets import MANIFEST_KEY
from pipelines.defs.curation.captions import CAPTIONS_KEY
from pipelines.defs.curation.resources import CurationSettings

SHARDS_KEY = dg.AssetKey(["training", "avatar_shards"])
VAE_KEY = dg.AssetKey(["training", "avatar_vae"])
AVATAR_KEY = dg.AssetKey(["training", "avatar"])
SUPER_RESOLUTION_KEY = dg.AssetKey(["training", "super_resolution"])
GROUP = "training_avatar"  # not "training": the sync expert there feeds curation, which feeds these


def held_out_videos(profile, layout: Layout) -> set[str]:
    """Every source video a benchmark case of the profile draws on (ground truth, audio, reference), by file
    stem (the curation's video id); the demo benchmark's from its recipe. None of them enters the shards."""
    from eval.runs import benchmark_names, load_prepared
    from kling.train.avatar_shards import demo_held_out

    held = demo_held_out() if profile.uses_demo_corpus else set()
    for name in benchmark_names(profile):
        for case in load_prepared(profile, name, layout).cases:
            held |= {Path(p).stem for p in [case.ground_truth, case.audio, *case.reference] if p}
    return held


def _progress(context: dg.AssetExecutionContext, what: str, every: int):
    def report(step: int, loss: float) -> None:
        if step % every == 0:
            context.log.info(f"{what}: step {step}, loss {loss:.4f}")
    return report


def _section(curation: CurationSettings, key: str) -> dict:
    return dict(curation.load().section("training").get(key) or {})


@dg.asset(key=SHARDS_KEY, deps=[MANIFEST_KEY, CAPTIONS_KEY, dg.AssetKey(["eval", "benchmarks"])], group_name=GROUP,
          kinds={"webdataset"})
def avatar_shards(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """Fixed-length windows of the kept clips (frames framed as the model sees them, aligned audio, caption,
    face box, mouth landmarks) as WebDataset tars; the benchmark cases' videos are held out (split.json)."""
    from kling.models.registry import get_size
    from kling.train.avatar_shards import ShardConfig, shard_curated

    profile, layout = curation.load(), Layout.default()
    size = get_size(_section(curation, "avatar").get("size", "tiny"))  # windows as the model sees them
    cfg = ShardConfig(**{"frames": size.frames, "side": size.size, **_section(curation, "avatar_shards")})
    split = shard_curated(curation.workspace().root, layout.training("avatar_shards"), held_out_videos(profile, layout), cfg)
    context.log.info(f"avatar shards: {split['samples']} windows from {len(split['train'])} clips"
                     f"{' (reused)' if split.get('reused') else ''}")
    return dg.MaterializeResult(metadata={
        "samples": split["samples"], "clips": len(split["train"]), "held_out": dg.MetadataValue.json(split["held_out"]),
        "skipped": dg.MetadataValue.json(split["skipped"]), "hash": split["hash"], "reused": bool(split.get("reused")),
        "path": dg.MetadataValue.path(str(layout.training("avatar_shards")))})


def _skipped(context: dg.AssetExecutionContext, root: Path, reason: str) -> dg.MaterializeResult:
    """Recorded, not raised (a folder of clips all held out, or none kept, trains nothing): the pointer at
    `root` says why, so the assets downstream skip too instead of using an earlier run."""
    from kling.train.runs import point_skipped

    point_skipped(root, reason)
    context.log.warning(f"not trained: {reason}")
    return dg.MaterializeResult(metadata={"status": "skipped", "reason": reason})


def _run_metadata(meta: dict, seconds: float) -> dict:
    history = meta.get("history") or []
    return {"run_dir": dg.MetadataValue.path(str(meta.get("run_dir", meta["dir"]))), "steps": len(history),
            "final_loss": history[-1]["loss"] if history else None,
            "loss_curve": dg.MetadataValue.md(loss_plot_markdown(history)) if history else "",
            "recipe": dg.MetadataValue.json(meta["recipe"]), "reused": bool(meta.get("reused")),
            "seconds": round(seconds, 2)}


@dg.asset(key=VAE_KEY, deps=[SHARDS_KEY], group_name=GROUP, kinds={"pytorch", "safetensors"})
def avatar_vae(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """The video VAE (diffusers' AutoencoderKLWan at the profile's size) trained on the shards; resumable,
    seeded, loss curve in Parquet beside it."""
    from kling.train.vae import VaeTrainConfig, train_vae_run

    layout, start = Layout.default(), time.perf_counter()
    cfg = VaeTrainConfig(**_section(curation, "avatar_vae"))
    try:
        meta = train_vae_run(layout.training("avatar_shards"), layout.training("avatar_vae"), cfg,
                             progress=_progress(context, "vae", max(1, cfg.steps // 10)))
    except NoTrainingSamples as exc:
        return _skipped(context, layout.training("avatar_vae"), str(exc))
    context.log.info(f"vae: {sparkline(meta.get('history') or [])}")
    return dg.MaterializeResult(metadata=_run_metadata(meta, time.perf_counter() - start))


@dg.asset(key=AVATAR_KEY, deps=[VAE_KEY], group_name=GROUP, kinds={"pytorch", "safetensors"})
def avatar(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """The avatar model (diffusers' WanTransformer3DModel with audio cross-attention) trained by flow matching
    on the shards over the frozen VAE; checkpoints with EMA and optimiser state, resumable."""
    from kling.train.avatar import AvatarTrainConfig, train_avatar_run
    from kling.train.avatar_shards import SPLIT, ShardConfig, held_out_windows
    from kling.train.runs import LATEST, skipped

    layout, start = Layout.default(), time.perf_counter()
    cfg = AvatarTrainConfig(**_section(curation, "avatar"))
    if why := skipped(layout.training("avatar_vae")):
        return _skipped(context, layout.training("avatar"), f"no VAE: {why}")
    vae_run = json.loads((layout.training("avatar_vae") / LATEST).read_text())  # its folder and recipe
    shards = layout.training("avatar_shards")
    try:
        split = json.loads((shards / SPLIT).read_text()) if (shards / SPLIT).is_file() else None
        held = held_out_windows(curation.workspace().root, set(split["held_out"]), ShardConfig(**split["config"])) \
            if split else None
        meta = train_avatar_run(shards, vae_run, layout.training("avatar"), cfg,
                                progress=_progress(context, "avatar", max(1, cfg.steps // 10)), held_out=held)
    except NoTrainingSamples as exc:
        return _skipped(context, layout.training("avatar"), str(exc))
    audio = meta.get("held_out_audio") or {}
    context.log.info(f"avatar: {sparkline(meta.get('history') or [])}; held-out audio reliance: {json.dumps(audio)}")
    return dg.MaterializeResult(metadata=_run_metadata(meta, time.perf_counter() - start)
                                | {"checkpoint": dg.MetadataValue.path(meta["dir"]),
                                   "held_out_audio": dg.MetadataValue.json(audio)})


# After the avatar model, though it needs only the VAE: both train on every core, and two at once only slow each other.
@dg.asset(key=SUPER_RESOLUTION_KEY, deps=[VAE_KEY, AVATAR_KEY], group_name=GROUP, kinds={"pytorch", "safetensors"})
def super_resolution(context: dg.AssetExecutionContext, curation: CurationSettings) -> dg.MaterializeResult:
    """The cascade's video super-resolution network: windows of the kept clips at `scale` x the avatar model's
    side (shards written once, the same held-out split), learning to restore faces passed through the trained
    VAE; scored on windows of the benchmark clips against bicubic upsampling."""
    from kling.models.registry import get_size, get_super_resolution_size
    from kling.train.avatar_shards import ShardConfig, held_out_windows, require_samples, shard_curated
    from kling.train.runs import LATEST, skipped
    from kling.train.super_resolution import SuperResolutionTrainConfig, train_super_resolution_run

    profile, layout, start = curation.load(), Layout.default(), time.perf_counter()
    cfg = SuperResolutionTrainConfig(**_section(curation, "super_resolution"))
    root = layout.training("super_resolution")
    systems = (profile.section("generation").get("systems") or {}).values()
    if not any(((s or {}).get("cascade") or {}).get("super_resolution") for s in systems):
        return _skipped(context, root, "no generated system of the profile has the cascade's super-resolution stage")
    if why := skipped(layout.training("avatar_vae")):
        return _skipped(context, root, f"no VAE: {why}")
    side = get_size(_section(curation, "avatar").get("size", "tiny")).size * get_super_resolution_size(cfg.size).scale
    shard_cfg = ShardConfig(**{"frames": get_super_resolution_size(cfg.size).frames, "side": side, "stride": 4,
                               **_section(curation, "super_resolution_shards")})
    held = held_out_videos(profile, layout)
    shards = layout.training("super_resolution_shards")
    shard_curated(curation.workspace().root, shards, held, shard_cfg)
    try:
        require_samples(shards)
    except NoTrainingSamples as exc:
        return _skipped(context, root, str(exc))
    vae_run = json.loads((layout.training("avatar_vae") / LATEST).read_text())
    meta = train_super_resolution_run(shards, vae_run, root, held_out_windows(curation.workspace().root, held, shard_cfg),
                                      cfg, progress=_progress(context, "super-resolution", max(1, cfg.steps // 10)))
    quality = meta.get("held_out_quality") or {}
    context.log.info(f"super-resolution: {sparkline(meta.get('history') or [])}; held out: {json.dumps(quality)}")
    return dg.MaterializeResult(metadata=_run_metadata(meta, time.perf_counter() - start)
                                | {"checkpoint": dg.MetadataValue.path(meta["dir"]),
                                   "held_out_quality": dg.MetadataValue.json(quality)})
