"""Video-level Sync-C / Sync-D: weights handling, robustness cases, multiple tracks, the command line.

Weights are a seeded random file in the official format (the official one cannot be downloaded here),
so these tests check the pipeline's behaviour and bookkeeping; numeric faithfulness is test_sync_parity.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kling.perception.sync.pipeline import SyncEvaluator, tracks_from_table
from tests.support.sync import draw_face_frames, synthetic_speech, write_official_format_weights
from kling.io.encode import write_video, write_wav


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_official_format_weights(tmp_path_factory.mktemp("w") / "syncnet_v2.model", seed=7)


@pytest.fixture(scope="module")
def ev(weights):
    return SyncEvaluator.official(weights, batch_size=16)


@pytest.fixture(scope="module")
def cropped_clip(tmp_path_factory):
    audio, env = synthetic_speech(38, seed=1)  # 1.52 s: shorter than the reference pipeline's 4 s
    path = tmp_path_factory.mktemp("v") / "crop.mp4"
    write_video(path, draw_face_frames(env, seed=1), fps=25, audio=audio)
    return path, audio


def test_cropped_short_clip_scores(ev, cropped_clip):
    path, _ = cropped_clip
    r = ev.evaluate_cropped(path)
    assert r.status == "ok", r.reason
    assert len(r.offset_dists) == 31 and -15 <= r.av_offset <= 15
    assert r.sync_d == pytest.approx(min(r.offset_dists))
    assert r.sync_c == pytest.approx(float(np.median(r.offset_dists)) - min(r.offset_dists))
    assert r.offset_dists[r.av_offset + 15] == pytest.approx(r.sync_d)  # offset -15 first
    t = r.tracks[0]
    assert t.n_windows == 38 - 5 and len(t.framewise_conf) == t.n_windows
    assert r.backbone == "syncnet_v2" and len(r.backbone_sha256) == 64 and r.protocol_version
    again = ev.evaluate_cropped(path)
    assert again.offset_dists == r.offset_dists  # deterministic


def test_missing_weights_unavailable_with_fetch_command(cropped_clip):
    ev = SyncEvaluator.official(None)  # KLING_WEIGHTS is an empty per-test dir
    r = ev.evaluate_cropped(cropped_clip[0])
    assert r.status == "unavailable" and r.sync_c is None
    assert "syncnet_v2" in r.reason and r.fetch_command == "kling weights fetch syncnet_v2"


def test_foreign_weight_file_is_refused(tmp_path, cropped_clip):
    import torch

    bad = tmp_path / "bad.model"
    torch.save({"netcnnaud.0.weight": torch.zeros(3)}, bad)
    r = SyncEvaluator.official(bad).evaluate_cropped(cropped_clip[0])
    assert r.status == "unavailable" and "missing keys" in r.reason


def test_too_short_states_minimum(ev, tmp_path):
    audio, env = synthetic_speech(5, seed=2)
    path = write_video(tmp_path / "tiny.mp4", draw_face_frames(env, seed=2), fps=25, audio=audio)
    r = ev.evaluate_cropped(path)
    assert r.status == "unavailable" and "minimum is 6 frames" in r.reason


def test_silent_and_missing_audio(ev, tmp_path):
    _, env = synthetic_speech(30, seed=3)
    frames = draw_face_frames(env, seed=3)
    silent = write_video(tmp_path / "silent.mp4", frames, fps=25, audio=np.zeros(30 * 640, np.float32))
    r = ev.evaluate_cropped(silent)
    assert r.status == "unavailable" and r.reason.startswith("silent audio")
    mute = write_video(tmp_path / "mute.mp4", frames, fps=25)
    assert ev.evaluate_cropped(mute).reason == "no audio"


def test_non_25fps_and_length_mismatch(ev, tmp_path):
    audio, env = synthetic_speech(60, seed=4)  # 2.4 s
    idx = np.minimum((np.arange(72) * 25 / 30).astype(int), 59)
    path = write_video(tmp_path / "f30.mp4", draw_face_frames(env[idx], seed=4), fps=30, audio=audio)
    r = ev.evaluate_cropped(path)
    assert r.status == "ok" and r.video_frames == 60  # 2.4 s resampled to 25 fps
    wav = write_wav(tmp_path / "long.wav", np.concatenate([audio, audio]))
    r2 = ev.evaluate_cropped(path, audio=wav)
    assert r2.status == "ok" and any("differ" in w for w in r2.warnings)
    assert r2.tracks[0].n_windows == 60 - 5


def test_full_pipeline_two_tracks_and_no_face(ev, tmp_path):
    n = 40
    audio, env = synthetic_speech(n, seed=5)
    left = draw_face_frames(env, seed=5, canvas=(240, 400), face_box=(20, 40, 170, 220))
    right = draw_face_frames(np.zeros(n), seed=6, canvas=(240, 400), face_box=(230, 50, 370, 210))
    frames = left.copy()
    frames[:, :, 200:] = right[:, :, 200:]
    path = write_video(tmp_path / "two.mp4", frames, fps=25, audio=audio)
    rows = [(f, 0, 20, 40, 170, 220) for f in range(n)] + [(f, 1, 230, 50, 370, 210) for f in range(3, n) if f != 20]
    table = pd.DataFrame(rows, columns=["frame", "track_id", "x0", "y0", "x1", "y1"])
    assert [t.frames.tolist() == list(range(3, n)) for t in tracks_from_table(table)][1]  # gap filled
    r = ev.evaluate_video(path, tracks=table)
    assert r.status == "ok" and [t.track_id for t in r.tracks] == [0, 1]
    assert all(t.status == "ok" for t in r.tracks) and r.tracks[1].start_frame == 3
    best = max(r.tracks, key=lambda t: t.sync_c)
    assert r.speaker_track == best.track_id and r.sync_c == best.sync_c
    empty = table.iloc[:0]
    r0 = ev.evaluate_video(path, tracks=empty)
    assert r0.status == "unavailable" and r0.reason == "no face track"


def test_cli_json_lines(weights, cropped_clip, tmp_path):
    from kling.cli import app, eval_app
    from kling.cli.eval_sync import register

    if not any(c.name == "sync" for c in eval_app.registered_commands):
        register(eval_app)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    res = CliRunner().invoke(app, ["eval", "sync", str(cropped_clip[0]), str(bad), "--cropped", "--json",
                                   "--weights", str(weights)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert len(lines) == 2
    ok, broken = lines
    for key in ("video", "av_offset", "sync_c", "sync_d", "offset_dists", "tracks", "backbone", "backbone_sha256",
                "protocol_version"):
        assert key in ok
    assert ok["status"] == "ok" and len(ok["offset_dists"]) == 31
    assert broken["status"] == "unavailable" and broken["reason"]


@pytest.mark.slow
def test_default_tracks_are_the_shared_table(demo_corpus):
    """Lip sync computes the face-track table every metric reads (shot-aware, default detector)."""
    from kling.perception.faces.tracks import shot_aware_tracks
    from kling.perception.sync.pipeline import _default_face_tracks

    video = demo_corpus.path("bo_cal_cut")
    table = _default_face_tracks(video)
    pd.testing.assert_frame_equal(table, shot_aware_tracks(video))
    cut = demo_corpus.clip("bo_cal_cut").scene_cut_frames[0]
    spans = table.groupby("track_id")["frame"].agg(["min", "max"])
    assert ((spans["min"] < cut) == (spans["max"] < cut)).all()  # no track spans the cut