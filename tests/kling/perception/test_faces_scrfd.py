"""SCRFD loading and decoding (insightface's model_zoo.SCRFD), run end to end on a tiny ONNX model the test builds.

The model has det_10g.onnx's interface (input "input.1" (1, 3, H, W), nine outputs: scores, boxes,
keypoints for strides 8 / 16 / 32, two anchors per cell, rows (H/s * W/s * 2, C)). Its weights make
a pure red / green / blue pixel at a cell corner of the stride 8 / 16 / 32 map fire both anchors
there, with fixed box and keypoint distances, so every detection's position is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from kling.perception.faces.detect import load_detector  # noqa: E402
from kling.perception.faces.scrfd import ScrfdDetector  # noqa: E402
from tests.support.scrfd import write_scrfd_onnx  # noqa: E402

STRIDES = (8, 16, 32)
BOX_DIST = {0: 4.0, 1: 1.0}  # per anchor, in stride units (all four sides)
KPS = np.array([[-1, -1], [1, -1], [0, 0], [-1, 1], [1, 1]], np.float32)  # anchor 0; anchor 1: x0.25
SCORE_BIAS = {0: -5.0, 1: -8.0}  # logits 10*x + bias: white -> 0.993 / 0.877, grey -> <0.01


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def build_scrfd_like(path, batched: bool = False):
    layers = {}
    for ci, s in enumerate(STRIDES):
        w_score = np.zeros((2, 3, s, s), np.float32)
        w_score[:, ci, 0, 0] = 10.0  # the cell corner's channel ci
        layers[s] = {
            "score": (w_score, np.array([SCORE_BIAS[0], SCORE_BIAS[1]], np.float32)),
            "bbox": (np.zeros((8, 3, 1, 1), np.float32), np.array([BOX_DIST[0]] * 4 + [BOX_DIST[1]] * 4, np.float32)),
            "kps": (np.zeros((20, 3, 1, 1), np.float32),
                    np.concatenate([KPS.ravel(), 0.25 * KPS.ravel()]).astype(np.float32)),
        }
    return write_scrfd_onnx(path, layers, batched, "scrfd_like")


def expected(x: float, y: float, stride: int, scale: float = 1.0):
    """The two detections (box, score, kps) a marker at det-input (x, y) should give, in frame px."""
    out = []
    for a in (0, 1):
        d = BOX_DIST[a] * stride
        box = np.array([x - d, y - d, x + d, y + d]) / scale
        kps = (np.array([x, y]) + KPS * (1.0 if a == 0 else 0.25) * stride) / scale
        score = _sigmoid(10 * (254.999 - 127.5) / 128 + SCORE_BIAS[a])
        out.append((box, score, kps))
    return out


MARKERS = [((80, 40), 8, 0), ((160, 96), 16, 1), ((320, 256), 32, 2)]  # (x, y), stride, channel


def _frame(h, w, k=1):
    """Grey frame with a pure R / G / B k x k block whose det-input image is one pixel per marker."""
    img = np.full((h, w, 3), 128, np.uint8)
    for (x, y), _, c in MARKERS:
        img[y * k:y * k + k, x * k:x * k + k] = 0
        img[y * k:y * k + k, x * k:x * k + k, c] = 255
    return img


def _check(dets, scale):
    assert len(dets) == 6
    got = sorted(dets, key=lambda d: (d.x0 + d.x1, d.x1 - d.x0))
    want = sorted(
        (e for (x, y), s, _ in MARKERS for e in expected(x, y, s, scale)),
        key=lambda e: (e[0][0] + e[0][2], e[0][2] - e[0][0]),
    )
    for d, (box, score, kps) in zip(got, want):
        np.testing.assert_allclose(d.box, box, atol=1e-3)
        np.testing.assert_allclose(d.score, score, atol=2e-3)
        np.testing.assert_allclose(d.lm5, kps, atol=1e-3)
        assert d.lm5.shape == (5, 2) and d.lm5.dtype == np.float32


@pytest.fixture(scope="module")
def scrfd_model(tmp_path_factory):
    return build_scrfd_like(tmp_path_factory.mktemp("scrfd") / "det_10g.onnx")


def test_scrfd_loader_reads_official_layout(scrfd_model):
    det = ScrfdDetector(scrfd_model, landmarks=False)
    assert det.strides == (8, 16, 32) and det.num_anchors == 2 and det.use_kps
    assert det.input_name == "input.1" and not det.batched and det.input_size == (640, 640)
    info = det.info()
    assert info["name"] == "scrfd" and len(info["weights_sha256"]) == 64


@pytest.mark.parametrize(
    "h,w,k,scale",
    [
        (480, 640, 1, 1.0),  # wide: fills the width, black bottom padding
        (960, 1280, 2, 0.5),  # wide, downscaled 2x (det_scale 0.5)
        (1280, 700, 2, 0.5),  # tall: fills the height (640 x 350), black right padding
    ],
)
def test_scrfd_decodes_known_detections(scrfd_model, h, w, k, scale):
    det = ScrfdDetector(scrfd_model, landmarks=False)
    frames = np.stack([_frame(h, w, k), np.full((h, w, 3), 128, np.uint8)])
    out = det.detect(frames)
    assert len(out) == 2 and out[1] == []
    _check(out[0], scale)


def test_scrfd_batched_outputs(tmp_path):
    det = ScrfdDetector(build_scrfd_like(tmp_path / "b.onnx", batched=True), landmarks=False)
    assert det.batched
    out = det.detect(np.stack([_frame(480, 640), _frame(480, 640)]))
    _check(out[0], 1.0)
    _check(out[1], 1.0)


def test_scrfd_adds_68_points_when_asked(scrfd_model):
    det = ScrfdDetector(scrfd_model, landmarks=True)
    dets = det.detect(_frame(480, 640)[None])[0]
    assert all(d.lm68 is not None and d.lm68.shape == (68, 2) for d in dets)


def test_scrfd_rejects_non_scrfd_model(tmp_path):
    node = helper.make_node("Identity", ["input.1"], ["y"])
    g = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "x.onnx"))
    with pytest.raises(ValueError, match="SCRFD"):
        ScrfdDetector(tmp_path / "x.onnx", landmarks=False)


def test_auto_detector_choice(scrfd_model, tmp_path):
    from kling.weights import WeightsUnavailable

    # weights folder given: auto -> scrfd; KLING_WEIGHTS is an empty per-test folder: auto -> dlib
    assert load_detector("auto", weights_dir=scrfd_model.parent, landmarks=False).name == "scrfd"
    assert load_detector("auto").name == "dlib"
    with pytest.raises(WeightsUnavailable):
        load_detector("scrfd")
    with pytest.raises(WeightsUnavailable):
        load_detector("scrfd", weights_dir=tmp_path)


def test_config_detector_uses_registry_weights(scrfd_model, tmp_path, monkeypatch):
    import shutil

    from kling.perception.faces.tracks import FaceTrackConfig, detector_for, track_chunks

    cfg = FaceTrackConfig(landmarks68=False, min_len=1)
    assert detector_for(cfg).name == "dlib"  # empty weights dir
    wdir = tmp_path / "weights"
    wdir.mkdir()
    shutil.copy(scrfd_model, wdir / "det_10g.onnx")
    monkeypatch.setenv("KLING_WEIGHTS", str(wdir))
    det = detector_for(cfg)
    assert det.name == "scrfd" and detector_for(cfg) is det  # cached
    res = track_chunks([(0, np.stack([_frame(480, 640)] * 3))], det, config=cfg)
    assert res.summary["detector"] == "scrfd" and res.summary["n_tracks"] == 6
    assert len(res.summary["detector_info"]["weights_sha256"]) == 64
    assert np.isnan(res.tracks["mouth_open"]).all() and res.tracks["lm68"].isna().all()


def test_one_loader_caches_per_parameters_and_weights_file(scrfd_model, tmp_path, monkeypatch):
    import os
    import shutil

    from kling.perception.faces.tracks import FaceTrackConfig, detector_for

    # no weights: "auto" is dlib; SCRFD's parameters are SCRFD's alone; equal settings, one detector
    dlib = load_detector("auto", landmarks=False)
    assert dlib.name == "dlib" and load_detector("auto", det_thresh=0.7, landmarks=False) is dlib
    assert load_detector("dlib", detect_side=320, landmarks=False) is dlib
    assert detector_for(FaceTrackConfig(landmarks68=False)) is dlib
    assert load_detector("dlib", upsample=1, landmarks=False) is not dlib
    with pytest.raises(TypeError, match="unknown face detector parameter"):
        load_detector("auto", detect_size=320)
    with pytest.raises(ValueError, match="unknown face detector"):
        load_detector("mtcnn")

    # the weights arrive later: the next call uses them; a replaced file gives a new detector
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("KLING_WEIGHTS", str(wdir))
    assert load_detector("auto", landmarks=False) is dlib
    shutil.copy(scrfd_model, wdir / "det_10g.onnx")
    scrfd = load_detector("auto", landmarks=False)
    assert scrfd.name == "scrfd" and load_detector("scrfd", input_size=640, landmarks=False) is scrfd
    assert load_detector("auto", det_thresh=0.6, landmarks=False) is not scrfd
    # a user's own file (the registry would refuse a changed file: it pins the first one it saw)
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(scrfd_model, mine / "det_10g.onnx")
    own = load_detector("auto", weights_dir=mine, landmarks=False)
    assert own is not scrfd and load_detector("auto", weights_dir=mine, landmarks=False) is own
    build_scrfd_like(mine / "det_10g.onnx", batched=True)
    st = (mine / "det_10g.onnx").stat()
    os.utime(mine / "det_10g.onnx", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fresh = load_detector("auto", weights_dir=mine, landmarks=False)
    assert fresh is not own and fresh.batched and not own.batched
