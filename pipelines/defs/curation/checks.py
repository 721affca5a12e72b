"""Quality gates of the curation stage (blocking checks stop downstream assets)."""

import pandas as pd

import dagster as dg
from kling.curate import steps
from pipelines.defs.curation.assets import MANIFEST_KEY, _refs
from pipelines.defs.curation.resources import CurationSettings

MANIFEST_COMPLETE = "manifest_accounts_for_every_video"
NO_STEP_ERRORS = "no_step_errors"


@dg.asset_check(asset=MANIFEST_KEY, name=MANIFEST_COMPLETE, blocking=True)
def manifest_complete(curation: CurationSettings) -> dg.AssetCheckResult:
    """Every source video has at least one manifest row (kept clips, or a rejection with its reason)."""
    _, refs = _refs(curation)
    df = pd.read_parquet(steps.manifest_path(curation.workspace()), columns=["video_id", "kept", "reject_reasons"])
    missing = sorted({r.video_id for r in refs} - set(df["video_id"]))
    unexplained = int(((~df["kept"]) & (df["reject_reasons"].map(len) == 0)).sum())
    return dg.AssetCheckResult(
        passed=not missing and unexplained == 0,
        metadata={"missing_videos": dg.MetadataValue.json(missing), "rejected_without_reason": unexplained},
    )


@dg.asset_check(asset=MANIFEST_KEY, name=NO_STEP_ERRORS)
def no_step_errors(curation: CurationSettings) -> dg.AssetCheckResult:
    """Unexpected exceptions (bugs, not bad media) on any video: recorded, so a run never dies of one clip,
    but surfaced here as a warning with each video's error."""
    _, refs = _refs(curation)
    ws = curation.workspace()
    errors = {}
    for ref in refs:
        for step in steps.STEPS:
            rec = ws.load(step, ref.video_id)
            if rec is not None and rec.status == "error":
                errors[f"{ref.video_id}/{step}"] = rec.reason
    return dg.AssetCheckResult(passed=not errors, severity=dg.AssetCheckSeverity.WARN, metadata={"errors": dg.MetadataValue.json(errors)})
