"""The curation stage's lip-sync filter with the demo profile's scorer (the sync expert trained on the
demo corpus): the clip whose audio is 5 frames late is rejected for its offset, in-sync clips are kept."""

from __future__ import annotations

import pandas as pd
import pytest

from kling.perception.faces.tracks import compute_face_tracks
from kling.curate.lipsync import LipSyncConfig, apply_decisions, score_clips

pytestmark = pytest.mark.slow


def _one_clip(video, clip_id):
    tracks = compute_face_tracks(video).tracks
    t = tracks[tracks["track_id"] == tracks["track_id"].iloc[0]]
    quality = pd.DataFrame([{"clip_id": clip_id, "kept": True, "track_id": int(t["track_id"].iloc[0]),
                             "start_frame": int(t["frame"].min()), "end_frame": int(t["frame"].max()) + 1,
                             "reject_reasons": []}])
    return quality, tracks


def test_offset_clip_rejected_in_sync_clip_kept(demo_corpus, demo_expert):
    expert_dir, _ = demo_expert
    cfg = LipSyncConfig(backbone="expert", weights=str(expert_dir), min_conf=0.3, max_offset=1)
    decisions = {}
    for cid in ("cal_offset", "bo_talk"):
        quality, tracks = _one_clip(demo_corpus.path(cid), cid)
        d = score_clips(demo_corpus.path(cid), quality, tracks, cfg)
        assert list(d["sync_backbone"]) == ["syncnet-expert-demo"]
        decisions[cid] = (quality, d)
    q, d = decisions["cal_offset"]
    assert d["reason"].iloc[0] == "lip_sync_offset" and abs(d["av_offset"].iloc[0] + 5) <= 1
    merged = apply_decisions(q, d)
    assert not merged["kept"].iloc[0] and merged["reject_reasons"].iloc[0] == ["lip_sync_offset"]
    q, d = decisions["bo_talk"]
    assert bool(d["keep"].iloc[0]), d.to_dict("records")
    assert apply_decisions(q, d)["kept"].iloc[0]
    # an offset correction keeps the late clip, recording the shift to apply to its audio
    fix = score_clips(demo_corpus.path("cal_offset"), *_one_clip(demo_corpus.path("cal_offset"), "cal_offset"),
                      LipSyncConfig(backbone="expert", weights=str(expert_dir), min_conf=0.3, correct_offset=True))
    assert bool(fix["keep"].iloc[0]) and abs(fix["shift_audio_frames"].iloc[0] + 5) <= 1


def test_unavailable_scorer_rejects_with_reason(demo_corpus, tmp_path):
    quality, tracks = _one_clip(demo_corpus.path("bo_talk"), "bo_talk")
    d = score_clips(demo_corpus.path("bo_talk"), quality, tracks, LipSyncConfig(backbone="expert", weights=str(tmp_path / "none")))
    assert not bool(d["keep"].iloc[0]) and d["reason"].iloc[0] == "lip_sync_unavailable"
    assert "no sync expert checkpoint" in d["detail"].iloc[0]
    off = score_clips(demo_corpus.path("bo_talk"), quality, tracks, LipSyncConfig(enabled=False))
    assert off.empty and apply_decisions(quality, off)["kept"].iloc[0]
