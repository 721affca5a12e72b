"""A user's own folder through every curation step (the functions the Dagster assets run): real talking clips
are kept, a 0.5 s clip is `too_short` with the minimum named, broken files are rejected with a reason, and the
lip-sync step says which judge decided and why."""

from __future__ import annotations

from pathlib import Path

import yaml

from kling.config import PROFILES_DIR, load_profile
from kling.curate.runner import Workspace
from kling.curate.sources import profile_videos
from kling.curate.steps import build_manifest, run_video
from kling.paths import Layout
from tests.kling.curate.own_folder import make_user_folder


def readme_profile(tmp_path: Path, videos: Path, name: str = "mine", train_steps: int | None = None) -> Path:
    """The README's route: copy the demo profile and point its source at the folder (and, for a test's speed,
    shorten the sync expert's training)."""
    raw = yaml.safe_load((PROFILES_DIR / "demo.yaml").read_text())
    raw["profile"] = name
    raw["source"] = {"kind": "folder", "path": str(videos)}
    if train_steps is not None:
        raw.setdefault("training", {}).setdefault("sync_expert", {})["steps"] = train_steps
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_own_folder_is_curated_with_reasons_for_every_video(tmp_path):
    expect = make_user_folder(tmp_path / "videos")
    profile = load_profile(readme_profile(tmp_path, tmp_path / "videos"))
    refs = profile_videos(profile)
    assert sorted(r.video_id for r in refs) == sorted(expect)
    ws = Workspace(Layout.default().curation(profile.name))
    for ref in refs:
        run_video(ws, ref, profile)  # never raises: every failure is a recorded rejection
    manifest, summary = build_manifest(ws, refs, profile)
    by_video = {v: g for v, g in manifest.groupby("video_id")}

    assert by_video["talk_bo"]["kept"].any(), by_video["talk_bo"][["clip_id", "reject_reasons", "reject_detail"]]
    short = by_video["short_half_second"].iloc[0]
    assert list(short["reject_reasons"]) == ["too_short"]
    assert short["reject_detail"].startswith("12 frames < 25 needed by face_tracks (min_len")
    assert list(by_video["mute"].iloc[0]["reject_reasons"]) == ["no_audio"]
    for vid in ("truncated", "corrupt", "empty"):
        row = by_video[vid].iloc[0]
        assert not row["kept"] and len(row["reject_reasons"]) == 1 and row["reject_detail"], (vid, row)
    rejected = manifest[~manifest["kept"]]
    assert rejected["reject_detail"].map(bool).all()  # every rejection says what was measured or seen
    assert not any(r.startswith("error") for rs in manifest["reject_reasons"] for r in rs)

    lip = ws.load("lip_sync", "talk_bo")
    assert lip.ok and lip.counts["judge"] == "mouth"
    assert "trained on the synthetic demo corpus" in lip.counts["judge_note"]
    assert summary["kept"] >= 1 and summary["rejections_by_reason"]["too_short"] == 1
