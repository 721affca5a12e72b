"""CSIM end to end on demo-corpus clips: same person scores above another, multi-character assignment, a change
of person shows in the worst window, the ArcFace loading path runs on an ONNX file made here, and the CLI."""

from __future__ import annotations

import json

import cv2
import pytest
from typer.testing import CliRunner

from eval.identity.evaluate import evaluate_identity


@pytest.fixture(scope="module")
def refs(demo_corpus, tmp_path_factory):
    """One reference image per identity: frame 0 of its talking clip (another clip than the ones scored)."""
    from kling.io.decode import read_frames

    out = tmp_path_factory.mktemp("refs")
    paths = {}
    for name in ("ava", "bo", "cal"):
        frame = read_frames(demo_corpus.path(f"{name}_talk"))[0]
        paths[name] = out / f"{name}.png"
        cv2.imwrite(str(paths[name]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return paths


@pytest.fixture(scope="module")
def detector():
    from kling.perception.faces.detect import load_detector

    return load_detector("dlib")


def test_same_identity_scores_higher(demo_corpus, refs, detector):
    from kling.perception.faces.tracks import shot_aware_tracks

    video = demo_corpus.path("ava_nod")
    tracks = shot_aware_tracks(video, detector)
    own = evaluate_identity(video, [refs["ava"]], "dlib", detector=detector, face_tracks=tracks)
    other = evaluate_identity(video, [refs["bo"]], "dlib", detector=detector, face_tracks=tracks)
    assert own.status == other.status == "ok"
    assert own.face_found_rate > 0.9 and own.n_sampled == 25  # 5 s at 25 fps, every 5th frame
    assert own.csim > other.csim + 0.03, (own.csim, other.csim)
    assert own.backbone == "dlib_resnet_v1" and len(own.backbone_sha256) == 64
    assert own.protocol_version == "csim-v1/fps25/s5/w10"


def test_two_characters_and_a_change_of_person(demo_corpus, refs, detector):
    from kling.perception.faces.tracks import shot_aware_tracks

    video = demo_corpus.path("bo_cal_cut")  # bo for 3 s, then a cut to cal
    tracks = shot_aware_tracks(video, detector)
    both = evaluate_identity(video, [refs["bo"], refs["cal"]], "dlib", detector=detector, face_tracks=tracks)
    bo, cal = both.characters
    assert not bo.missing and not cal.missing and set(bo.tracks).isdisjoint(cal.tracks)
    assert 0.4 < bo.face_found_rate < 0.6 and 0.4 < cal.face_found_rate < 0.6  # each on screen half the time

    # Only bo as reference, 3 s windows: identity is lost after the cut and the worst window says where.
    only_bo = evaluate_identity(video, [refs["bo"]], "dlib", detector=detector, face_tracks=tracks, window_s=3.0)
    assert [w.label for w in only_bo.windows] == ["0-3s", "3-6s"]
    assert only_bo.worst_window.index == 1
    assert only_bo.windows[0].csim > only_bo.windows[1].csim + 0.03

    # A third reference nobody plays is reported missing and pulls the clip score down.
    three = evaluate_identity(video, [refs["bo"], refs["cal"], refs["ava"]], "dlib", detector=detector,
                              face_tracks=tracks)
    assert three.missing_characters == [2]
    assert three.csim == pytest.approx((both.characters[0].csim + both.characters[1].csim) / 3, abs=1e-6)


def test_arcface_path_on_a_made_onnx(demo_corpus, refs, detector, tmp_path):
    from tests.eval.identity.test_identity_backbones import make_arcface_onnx

    from kling.hashing import file_sha256

    onnx_path = make_arcface_onnx(tmp_path / "w600k_r50.onnx")
    res = evaluate_identity(demo_corpus.path("cal_still"), [refs["cal"]], "arcface", weights_path=onnx_path,
                            detector=detector)
    assert res.status == "ok" and res.backbone == "arcface_w600k_r50"
    assert res.backbone_sha256 == file_sha256(onnx_path)
    assert -1.0 <= res.csim <= 1.0 and res.face_found_rate > 0.9


def test_missing_arcface_weights_make_the_metric_unavailable(demo_corpus, refs):
    res = evaluate_identity(demo_corpus.path("cal_still"), [refs["cal"]], "arcface")
    assert res.status == "unavailable" and "missing" in res.reason and "kling weights fetch" in res.reason
    assert res.csim is None
    rows = res.to_rows()
    assert rows[0]["metric"] == "csim" and rows[0]["status"] == "unavailable"


def test_faceless_video_is_unavailable_with_face_found_rate(demo_corpus, refs, detector):
    res = evaluate_identity(demo_corpus.path("scene_noface"), [refs["ava"]], "dlib", detector=detector)
    assert res.status == "unavailable" and res.face_found_rate == 0.0 and "no face" in res.reason


def test_cli_json(demo_corpus, refs):
    from kling.cli import app, eval_app
    from kling.cli.eval_identity import register

    if "identity" not in {c.name for c in eval_app.registered_commands}:
        register(eval_app)
    runner = CliRunner()
    out = runner.invoke(app, ["eval", "identity", "--reference", str(refs["ava"]), str(demo_corpus.path("ava_nod")),
                              "--backbone", "dlib", "--detector", "dlib", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("csim", "csim_windows", "worst_window", "characters", "backbone", "backbone_sha256",
                "protocol_version"):
        assert key in d
    assert d["backbone"] == "dlib_resnet_v1" and d["csim"] > 0.9
    bad = runner.invoke(app, ["eval", "identity", "-r", str(refs["ava"]), str(demo_corpus.path("ava_nod")),
                              "--backbone", "arcface"])
    assert bad.exit_code == 2 and "unavailable" in bad.stdout
