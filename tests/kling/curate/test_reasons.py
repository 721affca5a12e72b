"""Rejection reasons say what was measured; too-short inputs are `too_short` with the minimum; the lip-sync judge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kling.curate import filters as F
from kling.curate.lipsync import LipSyncConfig, apply_decisions, lip_sync_decision, resolve_judge, score_clips
from kling.perception.faces.tracks import no_track_reason
from kling.perception.faces.tracks import FaceTrackConfig
from kling.perception.speech import mouth_audio_sync
from kling.perception.sync.score import SyncResult


def _row(clip, **over):
    base = dict(clip_id=clip, video_id="v", shot=0, track_id=0, start_frame=0, end_frame=100, n_frames=100,
                duration_s=4.0, sharpness=200.0, face_px=160.0, face_ratio=0.4, abs_yaw=5.0, abs_pitch=3.0,
                abs_roll=1.0, yaw_std=1.0, pitch_std=1.0, box_speed=0.005, face_diff=0.01, speech_ratio=0.8,
                interpolated_ratio=0.0)
    return base | over


def test_every_reason_carries_the_measured_value_and_threshold():
    df = pd.DataFrame([_row("good"), _row("quiet", speech_ratio=0.12),
                       _row("bad", duration_s=0.48, face_px=30.0, face_ratio=0.05, abs_yaw=np.nan, box_speed=0.3)])
    out = F.apply_filters(df, F.FilterConfig())
    detail = dict(zip(out["clip_id"], out["reject_detail"]))
    reasons = dict(zip(out["clip_id"], out["reject_reasons"]))
    assert pd.isna(detail["good"]) and reasons["good"] == []
    assert reasons["quiet"] == ["no_speech"]  # the code (the manifest's grouping column) is unchanged
    assert detail["quiet"] == "no_speech: speech_ratio 0.12 < 0.3"
    assert reasons["bad"] == ["too_short", "face_too_small", "unmeasured_abs_yaw", "too_much_motion"]
    assert "too_short: duration_s 0.48 < 2" in detail["bad"]
    # two measures behind one code: both values are named
    assert "face_too_small: face_px 30 < 64, face_ratio 0.05 < 0.1" in detail["bad"]
    assert "unmeasured_abs_yaw: abs_yaw not measurable (NaN)" in detail["bad"]
    assert "too_much_motion: box_speed 0.3 > 0.05" in detail["bad"]
    assert all(type(r) is str for rs in out["reject_reasons"] for r in rs)  # plain codes in the table


def test_a_filter_returning_plain_codes_still_works(monkeypatch):
    monkeypatch.setattr(F, "FILTERS", dict(F.FILTERS))
    F.register_filter("always", lambda df, cfg: pd.Series([["custom"]] * len(df), index=df.index, dtype=object))
    out = F.apply_filters(pd.DataFrame([_row("a")]), F.FilterConfig(enabled=("always",)))
    assert out["reject_reasons"].iat[0] == ["custom"] and out["reject_detail"].iat[0] == "custom"


def test_too_short_for_a_face_track_names_the_minimum():
    cfg = FaceTrackConfig()
    code, detail = no_track_reason({"n_frames": 12, "frames_with_detection": 12, "n_rows": 0}, cfg)
    assert code == "too_short" and detail.startswith("12 frames < 25 needed by face_tracks (min_len")
    assert no_track_reason({"n_frames": 1, "frames_with_detection": 1}, cfg)[0] == "too_short"
    code, detail = no_track_reason({"n_frames": 200, "frames_with_detection": 0}, cfg)
    assert code == "no_face" and "200 frames" in detail
    code, detail = no_track_reason({"n_frames": 200, "frames_with_detection": 20}, cfg)
    assert code == "no_face" and "20 of 200" in detail


def test_sync_too_short_is_too_short():
    r = SyncResult(video="v", backbone="expert", backbone_sha256=None, protocol_version="p", status="unavailable",
                   reason="too short: 4 frames of audio and video (0.16 s); the minimum is 6 frames (0.24 s at 25 fps)")
    d = lip_sync_decision(r)
    assert d.reason == "too_short" and "minimum is 6 frames" in d.detail


def test_judge_auto_is_the_expert_on_the_demo_and_the_mouth_on_a_folder():
    assert resolve_judge(LipSyncConfig(), demo_source=True).judge == "expert"
    assert resolve_judge(LipSyncConfig(), demo_source=False).judge == "mouth"
    assert resolve_judge(LipSyncConfig(backbone="syncnet_v2"), demo_source=False).judge == "expert"
    assert resolve_judge(LipSyncConfig(judge="expert"), demo_source=False).judge == "expert"
    with pytest.raises(ValueError):
        resolve_judge(LipSyncConfig(judge="nope"), demo_source=False)


def _talk(n: int, seed: int):
    """A mouth that opens with a syllable envelope (a lag of one frame, noise), and that envelope as loudness."""
    from tests.support.sync import synthetic_speech

    _, env = synthetic_speech(n, seed=seed)
    rng = np.random.default_rng(seed)
    mouth = 0.05 + 0.3 * np.roll(env, -1) + 0.02 * rng.standard_normal(n)
    return mouth, env


def test_mouth_audio_sync_separates_the_speaker_from_another_face():
    mouth, env = _talk(200, 1)
    other, _ = _talk(200, 2)  # a face talking to another voice
    corr, lag, n = mouth_audio_sync(mouth, env)
    assert corr > 0.6 and lag == 1 and n > 150
    assert mouth_audio_sync(other, env)[0] < 0.2
    assert np.isnan(mouth_audio_sync(np.full(200, np.nan), env)[0])  # no mouth landmarks: not measurable


def test_the_mouth_judge_keeps_the_speaker_and_rejects_the_silent_face():
    mouth, env = _talk(200, 1)
    other, _ = _talk(200, 2)
    frames = np.arange(200)
    tracks = pd.DataFrame({"frame": np.concatenate([frames, frames]), "track_id": np.repeat([0, 1], 200),
                           "mouth_open": np.concatenate([mouth, other]).astype(np.float32)})
    quality = pd.DataFrame([_row("v-s0-t0", track_id=0, end_frame=200), _row("v-s0-t1", track_id=1, end_frame=200)])
    quality["kept"] = True
    quality["reject_reasons"] = [[], []]
    quality["reject_detail"] = [None, None]
    cfg = resolve_judge(LipSyncConfig(), demo_source=False)
    dec = score_clips("unused.mp4", quality, tracks, cfg, speech=np.ones(200), envelope=env)
    assert dec["keep"].tolist() == [True, False]
    assert dec["reason"].iat[1] == "lip_sync_low_confidence"
    assert "mouth/audio correlation" in dec["detail"].iat[1] and "< 0.20" in dec["detail"].iat[1]
    out = apply_decisions(quality, dec)
    assert out["kept"].tolist() == [True, False]
    assert pd.isna(out["reject_detail"].iat[0])
    assert out["reject_detail"].iat[1].startswith("lip_sync_low_confidence: mouth/audio correlation")
