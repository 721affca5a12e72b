"""Face tracks on the synthetic demo corpus, against its ground truth (shots, mouth opening, no-face clip)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kling.perception.faces.detect import DlibDetector
from kling.perception.faces.tracks import compute_face_tracks

pytestmark = pytest.mark.slow  # the demo_corpus fixture renders and encodes the corpus (~1 min)


@pytest.fixture(scope="module")
def detector():
    return DlibDetector()


def _tracks(manifest, clip_id, detector):
    rec = manifest.clip(clip_id)
    truth = json.loads((Path(manifest.root) / rec.truth_file).read_text())
    res = compute_face_tracks(manifest.path(clip_id), shots=[0, *rec.scene_cut_frames], detector=detector)
    return rec, truth, res


def test_demo_talking_clip_tracks_mouth(demo_corpus, detector):
    rec, truth, res = _tracks(demo_corpus, "ava_talk", detector)
    assert res.summary["n_frames"] == rec.n_frames and res.summary["n_tracks"] == 1
    assert res.summary["face_found_rate"] == 1.0
    mo = res.tracks.set_index("frame")["mouth_open"]
    gt = np.asarray(truth["mouth_open"])[mo.index]
    assert np.corrcoef(mo.to_numpy(), gt)[0, 1] > 0.8


def test_demo_scene_cut_splits_track(demo_corpus, detector):
    rec, _, res = _tracks(demo_corpus, "bo_cal_cut", detector)
    (cut,) = rec.scene_cut_frames
    df = res.tracks
    assert res.summary["n_tracks"] == 2
    spans = df.groupby("track_id")["frame"].agg(["min", "max"])
    assert spans.loc[0, "max"] < cut <= spans.loc[1, "min"]


def test_demo_no_face_clip_is_a_skip(demo_corpus, detector):
    _, _, res = _tracks(demo_corpus, "scene_noface", detector)
    assert res.skip_reason == "no_face" and res.summary["face_found_rate"] == 0.0
    assert res.to_arrow().num_rows == 0


def test_shots_found_in_the_same_decode_give_the_same_tracks(demo_corpus, detector):
    """One decode (shot detector fed beside the face detector, tracking deferred to the end) equals a shot pass
    followed by a face-track pass, row for row; the cut is the corpus's true cut."""
    from pandas.testing import assert_frame_equal

    from kling.perception.shots import ShotDetector, detect_shots

    video = demo_corpus.path("bo_cal_cut")
    shots = detect_shots(video)
    two_pass = compute_face_tracks(video, shots=shots, detector=detector)
    one_pass = compute_face_tracks(video, detector=detector, shot_detector=ShotDetector())
    assert [s.start_frame for s in shots][1:] == demo_corpus.clip("bo_cal_cut").scene_cut_frames
    assert one_pass.summary["n_shot_cuts"] == two_pass.summary["n_shot_cuts"] == 1
    assert one_pass.summary["n_tracks"] == 2
    assert_frame_equal(one_pass.tracks, two_pass.tracks)
    with pytest.raises(ValueError, match="either shots or a shot_detector"):
        compute_face_tracks(video, shots=shots, detector=detector, shot_detector=ShotDetector())
