"""One face-track table for every metric: `kling eval sync` gives the leaderboard's Sync-C on a video with a cut.

The video: a demo-corpus talking head (bo) cut at frame 30 to another person (cal) framed alike, 2.4 s with
speech. Without shot-aware tracking the IoU tracker joins the two people into one track across the cut, so
lip sync would score them as one speaker; `kling.perception.faces.tracks.shot_aware_tracks` splits them, and
the command line and the evaluation suite (eval.suite.evaluate_case) both read that table. SyncNet is the
official network's exact file format with seeded weights (tests.support.sync), passed to both.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import pandas as pd
import pytest
from typer.testing import CliRunner

CUT = 30


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
    from kling.demo.clip import plan_clip
    from kling.demo.corpus import load_recipe, write_clip

    out = tmp_path_factory.mktemp("cut")
    spec = {"id": "bo_cal_cut_short", "duration_s": 2.4, "motion": "sway",
            "shots": [{"identity": "bo", "frames": CUT}, {"identity": "cal"}]}
    rec = write_clip(plan_clip(spec, load_recipe(), 7), out, preset="ultrafast")
    assert rec.scene_cut_frames == [CUT]
    video = out / rec.file
    ref = out / "ref.png"  # the reference face: the clip's first frame (as the demo benchmark does)
    ok, frame = cv2.VideoCapture(str(video)).read()
    assert ok
    cv2.imwrite(str(ref), frame)
    return video, ref


@pytest.fixture()
def received(monkeypatch):
    """The face-track tables that lip sync, identity and adherence are handed, by metric, in call order."""
    import eval.adherence.measured as measured
    import eval.identity.evaluate as identity
    import kling.perception.sync.pipeline as sync

    got: dict[str, list[pd.DataFrame]] = {"sync": [], "identity": [], "adherence": []}
    tracks_from_table, signals_from_tracks = sync.tracks_from_table, measured.signals_from_tracks
    init = identity.FaceSimilarityConsumer.__init__

    def sync_tracks(table):
        got["sync"].append(table)
        return tracks_from_table(table)

    def adherence_signals(tracks, *a, **kw):
        got["adherence"].append(tracks)
        return signals_from_tracks(tracks, *a, **kw)

    def identity_init(self, tracks, *a, **kw):
        got["identity"].append(tracks)
        init(self, tracks, *a, **kw)

    monkeypatch.setattr(sync, "tracks_from_table", sync_tracks)
    monkeypatch.setattr(measured, "signals_from_tracks", adherence_signals)
    monkeypatch.setattr(identity.FaceSimilarityConsumer, "__init__", identity_init)
    return got


def _cli(*args):
    import importlib

    from kling.cli import app, eval_app

    for name in ("sync", "identity", "adherence"):
        if not any(c.name == name for c in eval_app.registered_commands):
            importlib.import_module(f"kling.cli.eval_{name}").register(eval_app)
    res = CliRunner().invoke(app, ["eval", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_cli_and_suite_share_tracks_and_sync_c(cut_video, received, tmp_path):
    from eval.identity.backbones import load_backbone
    from eval.suite import EvalSettings, evaluate_case
    from kling.perception.faces.detect import load_detector
    from kling.perception.faces.tracks import FaceTrackConfig
    from kling.perception.sync.pipeline import SyncEvaluator
    from tests.support.sync import write_official_format_weights

    video, ref = cut_video
    weights = write_official_format_weights(tmp_path / "syncnet_v2.model", seed=3)

    cli_sync = json.loads(_cli("sync", video, "--json", "--weights", weights).strip().splitlines()[-1])
    assert cli_sync["status"] == "ok" and len(cli_sync["tracks"]) == 2
    _cli("identity", video, "--reference", ref, "--backbone", "dlib", "--json")
    _cli("adherence", video, "--instruction", "A man talks to the camera.", "--json")
    cli_tables = {k: v[-1] for k, v in received.items()}

    case = SimpleNamespace(id="cut", reference=[ref], instruction="A man talks to the camera.", ground_truth=None)
    rows, _ = evaluate_case(video, case, [("syncnet_v2", SyncEvaluator.official(weights))],
                            [load_backbone("dlib")], load_detector("auto"),
                            EvalSettings(adherence=True, distribution=False))
    suite_sync_c = next(r["value"] for r in rows if r["metric"] == "sync_c")
    assert suite_sync_c == cli_sync["sync_c"]

    assert all(len(v) == 2 for v in received.values()), {k: len(v) for k, v in received.items()}
    for metric, (from_cli, from_suite) in received.items():
        pd.testing.assert_frame_equal(from_cli, from_suite, obj=f"{metric}: cli vs suite")
        pd.testing.assert_frame_equal(from_cli, cli_tables["sync"], obj=f"{metric} vs sync")

    # the shared table splits at the cut, where the two faces overlap enough for the IoU tracker to join them
    tracks = cli_tables["sync"]
    spans = tracks.groupby("track_id")["frame"].agg(["min", "max"])
    assert len(spans) == 2 and ((spans["min"] < CUT) == (spans["max"] < CUT)).all()
    box = lambda f: tracks[tracks["frame"] == f][["x0", "y0", "x1", "y1"]].to_numpy()[0]  # noqa: E731
    a, b = box(CUT - 1), box(CUT)
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda x: (x[2] - x[0]) * (x[3] - x[1])  # noqa: E731
    assert inter / (area(a) + area(b) - inter) > FaceTrackConfig().iou_threshold
