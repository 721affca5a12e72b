"""MultiScaleDetector: small faces in large frames, with the detector's own result kept where it finds a face.

Synthetic frames use the demo corpus' drawn faces (kling.demo.face) placed small in a big frame, so these
tests need no data; the real photos of ../shared/data are checked by the shared_data test at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

from kling.demo import load_recipe
from kling.demo.face import Identity, Pose, render_frame
from kling.demo.raster import render_background
from kling.perception.faces.detect import DlibDetector
from kling.perception.faces.landmarks import Dlib68Predictor, lm5_from_lm68
from kling.perception.faces.multiscale import (
    MultiScaleDetector,
    describe_search,
    largest_face_report,
    merge,
    scale_ladder,
    search_text,
    tile_origins,
)


@pytest.fixture(scope="module")
def base():
    return DlibDetector()


@pytest.fixture(scope="module")
def ms(base):
    return MultiScaleDetector(base)


def _identity(name: str) -> Identity:
    p = load_recipe()["identities"][name]["face"]
    return Identity(name=name, **{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})


def _scene(w: int, h: int, heads: list[tuple[str, float, float, float]]) -> np.ndarray:
    """A backdrop with drawn people: (identity, head_scale, centre x px, head_y fraction), back to front."""
    img = render_background(w, (190, 200, 212), (118, 128, 142), seed=3, height=h)
    for name, k, cx, hy in heads:
        pose = Pose(tx=(cx - w / 2) / k)  # render_frame scales tx by head_scale
        img = render_frame(_identity(name), pose, img, head_scale=k, head_y=hy).astype(np.float32)
    return img.astype(np.uint8)


def test_scale_ladder_and_tiles():
    assert scale_ladder(1.0, 2.0) == [2.0]
    assert scale_ladder(0.625, 2.0) == [1.0, 2.0]
    assert scale_ladder(2.0, 2.0) == [] and scale_ladder(0.5, 0.4) == []
    assert scale_ladder(1 / 12, 2.0) == [0.125, 0.25, 0.5, 1.0, 2.0]
    for length, tile, overlap in [(100, 256, 64), (1000, 256, 64), (4000, 1024, 192), (641, 640, 38)]:
        xs = tile_origins(length, tile, overlap)
        ends = [x + min(tile, length) for x in xs]
        assert xs[0] == 0 and ends[-1] == length and all(x >= 0 for x in xs)
        # consecutive tiles overlap by at least `overlap`: a face that small is whole in some tile
        assert all(e - n >= min(overlap, tile) for e, n in zip(ends[:-1], xs[1:])) or len(xs) == 1


def test_loader_wraps_and_reads_through(base):
    from kling.perception.faces.detect import load_detector

    det = load_detector("dlib", landmarks=False)
    assert isinstance(det, MultiScaleDetector) and det.name == "dlib" and det.detect_side == 320
    assert det.info()["multiscale"]["min_face"] == 40.0 and det.info()["detect_side"] == 320


def test_plan_follows_frame_size(ms):
    assert ms.plan(256, 256) == [1.0, 2.0]  # dlib runs 256 px frames as they are; 40 px needs 2x
    assert ms.plan(512, 512) == [0.625, 1.0, 2.0]
    assert ms.plan(2160, 3840)[0] == pytest.approx(320 / 3840) and ms.plan(2160, 3840)[-1] == 2.0
    assert ms.smallest_face(2160, 3840) == pytest.approx(40.0)
    assert MultiScaleDetector(ms.base, min_face=160).plan(512, 512) == [0.625]  # 0.5 < 0.625: nothing finer


def test_close_up_keeps_the_detectors_own_result(base, ms):
    frame = _scene(256, 256, [("ava", 1.0, 128, 0.45)])  # the demo corpus' own framing
    want = base.detect(frame[None])[0]
    got = ms.detect(frame[None])[0]
    assert len(want) == 1 and ms.last_passes == [[1.0]]
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a.box, b.box)
        np.testing.assert_array_equal(a.lm68, b.lm68)
        assert a.score == b.score


def test_small_face_in_large_frame(base, ms):
    w, h, k, hy = 512, 384, 0.5, 0.3
    frame = _scene(w, h, [("bo", k, 400, hy)])
    assert base.detect(frame[None])[0] == []  # the problem: ~50 px face, 320 px detection copy
    (d,) = ms.detect(frame[None])[0]
    assert ms.last_passes == [[0.625, 1.0, 2.0]]
    cx, cy = (d.x0 + d.x1) / 2, (d.y0 + d.y1) / 2
    assert 35 <= d.x1 - d.x0 <= 70
    assert abs(cx - 400) < 12 and abs(cy - (h * hy + 12 * k)) < 25
    # landmarks at full resolution: the 68-point predictor on the original frame, 5 points from them
    lm68 = Dlib68Predictor().predict(frame, (d.x0, d.y0, d.x1, d.y1))
    np.testing.assert_array_equal(d.lm68, lm68)
    np.testing.assert_allclose(d.lm5, lm5_from_lm68(lm68))
    assert d.lm5.dtype == np.float32 and (d.lm5[:, 0] > d.x0).all() and (d.lm5[:, 0] < d.x1).all()
    # in a batch each frame gets what it gets alone (per-frame decisions; frames that found nothing go on)
    blank = _scene(w, h, [])
    batch = ms.detect(np.stack([frame, blank, frame]))
    assert [len(b) for b in batch] == [1, 0, 1] and ms.last_passes == [[0.625, 1.0, 2.0]] * 3
    np.testing.assert_array_equal(batch[2][0].box, d.box)


def test_no_face_tries_every_scale(ms):
    frame = _scene(400, 300, [])
    assert ms.detect(frame[None]) == [[]]
    assert ms.last_passes == [ms.plan(300, 400)] and ms.last_passes[0][-1] == 2.0


def test_first_stops_at_the_large_face_all_finds_both(base):
    frame = _scene(512, 384, [("ava", 1.6, 170, 0.45), ("cal", 0.5, 430, 0.25)])
    first_det = MultiScaleDetector(base)
    first = first_det.detect(frame[None])[0]
    assert len(first) == 1 and first[0].x1 - first[0].x0 > 130  # pass 0 saw the large face: done
    assert first_det.last_passes == [[0.625]]
    # "all" (reference images): every scale, both faces; the report names the largest as chosen
    det, rep = largest_face_report(frame, MultiScaleDetector(base, mode="all"))
    assert rep["n_faces"] == 2 and rep["tried"]["scales"] == [0.625, 1.0, 2.0] and rep["tried"]["mode"] == "all"
    small = next(f for f in rep["faces"] if f["index"] != rep["chosen"])
    assert rep["faces"][rep["chosen"]]["width"] > 130 and 35 <= small["width"] <= 70
    assert abs((small["box"][0] + small["box"][2]) / 2 - 430) < 12
    assert det.x1 - det.x0 == pytest.approx(rep["faces"][rep["chosen"]]["width"], abs=0.1)


def test_reference_report_says_what_was_tried(base, ms):
    blank = _scene(320, 240, [])
    det, rep = largest_face_report(blank, ms)
    assert det is None and rep["chosen"] is None and rep["n_faces"] == 0 and rep["faces"] == []
    assert rep["tried"] == {"detector": "dlib", "image_wh": [320, 240], "scales": [1.0, 2.0],
                            "smallest_face_px": 40.0, "mode": "first"}
    assert search_text(rep["tried"]) == "dlib at scale(s) 1, 2 of the 320x240 image, faces down to ~40 px wide"
    # a plain detector: its one scale, and how small a face it could see there
    assert describe_search(base, 768, 576)["scales"] == [0.4167]
    assert describe_search(base, 768, 576)["smallest_face_px"] == 192.0


def test_face_across_tile_edges_is_found_once(base):
    # tiles of 336 px at scale 2: the face (~100 px there) is whole in one tile, cut in its neighbours
    det = MultiScaleDetector(base, tile=336)
    frame = _scene(320, 240, [("ava", 0.5, 84, 0.35)])
    dets = det.detect(frame[None])[0]
    assert len(dets) == 1 and det.last_passes == [[1.0, 2.0]]
    assert abs((dets[0].x0 + dets[0].x1) / 2 - 84) < 12


def test_merge_prefers_earlier_and_drops_parts():
    from kling.perception.faces.detection import Detection

    z = np.zeros((5, 2), np.float32)
    whole = Detection(0, 0, 100, 100, 1.0, z)
    part = Detection(0, 50, 100, 100, 2.0, z)  # a face cut by a tile edge: inside the whole one
    other = Detection(200, 0, 260, 60, 0.5, z)
    assert merge([whole, part, other]) == [whole, other]


def test_bad_arguments(base):
    with pytest.raises(ValueError):
        MultiScaleDetector(base, mode="some")
    with pytest.raises(ValueError):
        MultiScaleDetector(base, min_face=0)
    with pytest.raises(ValueError):
        MultiScaleDetector(base, tile=100)
    with pytest.raises(TypeError):
        MultiScaleDetector(object())


def test_scrfd_tiles_map_back_to_frame_pixels(tmp_path):
    """SCRFD (the tests' tiny model of det_10g's interface) at 1:1 in 640 px tiles of a 1080p frame."""
    pytest.importorskip("onnx")
    from kling.perception.faces.scrfd import ScrfdDetector
    from tests.kling.perception.test_faces_scrfd import KPS, build_scrfd_like

    base = ScrfdDetector(build_scrfd_like(tmp_path / "det_10g.onnx"), landmarks=False)
    det = MultiScaleDetector(base, min_face=16)  # 16 px faces: tiles at full resolution
    assert det.plan(1080, 1920) == [pytest.approx(1 / 3), 0.5, 1.0]
    # the 1.0 pass follows the 0.5 one: overlap 1.2 * 16 * 2 = 39 px
    assert tile_origins(1920, 640, 39) == [0, 601, 1202, 1280]
    assert tile_origins(1080, 640, 39) == [0, 440]
    frame = np.full((1080, 1920, 3), 128, np.uint8)
    # red markers at stride-8 cell corners of a tile: (1680, 840) in tile (440, 1280) only (1680 - 1202
    # is no multiple of 8); (400, 480) in tiles (0, 0) and (440, 0) both -> one detection after the merge
    for x, y in [(1680, 840), (400, 480)]:
        frame[y, x] = (255, 0, 0)
    assert base.detect(frame[None])[0] == []  # the letterboxed 1/3-scale copy loses them
    dets = sorted(det.detect(frame[None])[0], key=lambda d: d.x0)
    assert det.last_passes == [[pytest.approx(1 / 3), 0.5, 1.0]]
    assert len(dets) == 2
    for d, (x, y) in zip(dets, [(400, 480), (1680, 840)]):
        np.testing.assert_allclose(d.box, [x - 32, y - 32, x + 32, y + 32], atol=1e-3)
        np.testing.assert_allclose(d.lm5, np.array([x, y]) + KPS * 8, atol=1e-3)
        assert d.score > 0.99 and d.lm68 is None


@pytest.mark.shared_data
def test_real_photos_and_placed_faces(shared_data, ms):
    """Every shared photo as it is (one face), and a real face placed small in a 720p frame."""
    import cv2

    for name, (lo, hi) in {"full_body_1.png": (150, 260), "full_body_2.png": (180, 300),
                           "full3.png": (170, 260), "full4.jpeg": (180, 300)}.items():
        img = cv2.cvtColor(cv2.imread(str(shared_data / "faces" / name)), cv2.COLOR_BGR2RGB)
        dets = ms.detect(img[None])[0]
        assert len(dets) == 1, (name, dets)
        assert lo <= dets[0].x1 - dets[0].x0 <= hi, name
    face = cv2.cvtColor(cv2.imread(str(shared_data / "faces" / "happy.png")), cv2.COLOR_BGR2RGB)
    small = cv2.resize(face, (96, 96), interpolation=cv2.INTER_AREA)  # its face ~55 px wide
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[300:396, 1000:1096] = small
    (d,) = ms.detect(frame[None])[0]
    assert 1000 <= (d.x0 + d.x1) / 2 <= 1096 and 300 <= (d.y0 + d.y1) / 2 <= 396
