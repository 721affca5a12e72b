"""Identity backbones on real faces (../shared/data/faces): happy.png and sad.png are one person, people_0.png
another. Skipped when the shared data is absent; the ArcFace case also needs the official weights."""

from __future__ import annotations

import numpy as np
import pytest

from eval.identity.backbones import BackboneUnavailable, load_backbone
from eval.identity.evaluate import reference_embeddings


@pytest.fixture(scope="module")
def detector():
    from kling.perception.faces.detect import load_detector

    return load_detector("dlib")


def _similarities(shared_data, backbone, detector):
    faces = shared_data / "faces"
    embs, _ = reference_embeddings([faces / "happy.png", faces / "sad.png", faces / "people_0.png"], backbone,
                                   detector)
    sim = embs @ embs.T
    return sim[0, 1], sim[0, 2], sim[1, 2]


def test_dlib_scores_happy_and_sad_as_one_person(shared_data, detector):
    same, diff_a, diff_b = _similarities(shared_data, load_backbone("dlib"), detector)
    assert same > max(diff_a, diff_b) + 0.05, (same, diff_a, diff_b)
    assert same > 0.95  # dlib's ResNet: same person ~0.99 in cosine


def test_arcface_scores_happy_and_sad_as_one_person(shared_data, detector):
    try:
        bb = load_backbone("arcface")
    except BackboneUnavailable as exc:
        pytest.skip(f"ArcFace weights not installed: {exc.reason}")
    same, diff_a, diff_b = _similarities(shared_data, bb, detector)
    assert same > 0.4 and max(diff_a, diff_b) < 0.3, (same, diff_a, diff_b)


def test_reference_without_a_face_is_named(tmp_path, detector):
    import cv2

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="wall.png"):
        reference_embeddings([blank], load_backbone("dlib"), detector)
