"""insightface as a library: its SCRFD, ArcFace and norm_crop give what the project's hand-written code gave.

The reference below is the hand-written decoding, alignment and preprocessing the library used before it
called insightface (kept here, not in the library, as the "before"): SCRFD letterbox / anchors / distance
decoding / NMS, float64 Umeyama alignment, (x - 127.5) / 127.5 RGB ArcFace input. Both run on the tests' own
planted ONNX files in the official formats (det_10g.onnx: 9 outputs, strides 8/16/32, 2 anchors; w600k_r50:
one (N, 3, 112, 112) input, one (N, 512) output).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("insightface")

from kling.perception.faces.scrfd import ScrfdDetector  # noqa: E402
from tests.eval.identity.test_identity_backbones import make_arcface_onnx  # noqa: E402
from tests.kling.perception.test_faces_scrfd import _frame, build_scrfd_like  # noqa: E402
from tests.support.scrfd import write_scrfd_onnx  # noqa: E402

TOL = 1e-5


# ------------------------------------------------------------------------------------ the reference ("before")

ARCFACE_DST = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def ref_scrfd(session, frames, input_size=(640, 640), det_thresh=0.5, nms_thresh=0.4):
    """Per frame (boxes (n,4), scores (n,), kps (n,5,2)): the hand-written SCRFD decoding as it was."""
    n_out = len(session.get_outputs())
    strides = (8, 16, 32) if n_out in (6, 9) else (8, 16, 32, 64, 128)
    anchors, fmc = (2 if n_out in (6, 9) else 1), len(strides)
    in_w, in_h = input_size
    out = []
    for img in frames:
        h, w = img.shape[:2]
        new_h, new_w = (in_h, int(in_h / (h / w))) if h / w > in_h / in_w else (int(in_w * (h / w)), in_w)
        scale = new_h / h
        canvas = np.zeros((in_h, in_w, 3), np.uint8)
        canvas[:new_h, :new_w] = cv2.resize(img, (new_w, new_h))
        blob = ((canvas.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outs = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(blob)})
        outs = [o[0] if o.ndim == 3 else o for o in outs]
        boxes, scores, kpss = [], [], []
        for i, s in enumerate(strides):
            ys, xs = np.mgrid[: in_h // s, : in_w // s]
            c = np.repeat(np.stack([xs, ys], -1).astype(np.float32).reshape(-1, 2) * s, anchors, axis=0)
            sc = outs[i].reshape(-1)
            pos = np.where(sc >= det_thresh)[0]
            d = outs[i + fmc][pos] * s
            boxes.append(np.stack([c[pos, 0] - d[:, 0], c[pos, 1] - d[:, 1], c[pos, 0] + d[:, 2],
                                   c[pos, 1] + d[:, 3]], -1))
            scores.append(sc[pos])
            k = outs[i + 2 * fmc][pos] * s
            kpss.append(k.reshape(len(k), 5, 2) + c[pos][:, None, :])
        b, sc = np.concatenate(boxes) / scale, np.concatenate(scores)
        order = np.argsort(sc)[::-1]
        b, sc, k = b[order], sc[order], (np.concatenate(kpss) / scale)[order]
        keep, idx = [], np.arange(len(sc))
        area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
        while idx.size:  # greedy NMS, +1-pixel areas
            i, rest = idx[0], idx[1:]
            keep.append(i)
            iw = np.maximum(0.0, np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]) + 1)
            ih = np.maximum(0.0, np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]) + 1)
            idx = rest[iw * ih / (area[i] + area[rest] - iw * ih) <= nms_thresh]
        out.append((b[keep], sc[keep], k[keep]))
    return out


def ref_estimate_norm(lm5, image_size=112):
    """Umeyama (1991) similarity in float64, onto the ArcFace template (multiples of 112 or 128)."""
    ratio, dx = (image_size / 112.0, 0.0) if image_size % 112 == 0 else (image_size / 128.0, 8.0 * image_size / 128)
    dst = (ARCFACE_DST * ratio).astype(np.float64)
    dst[:, 0] += dx
    src = np.asarray(lm5, np.float64)
    sd, dd = src - src.mean(0), dst - dst.mean(0)
    U, S, Vt = np.linalg.svd(dd.T @ sd / len(src))
    d = np.array([1.0, -1.0 if np.linalg.det(U) * np.linalg.det(Vt) < 0 else 1.0])
    R = U @ np.diag(d) @ Vt
    scale = (S @ d) / sd.var(0).sum()
    return np.hstack([scale * R, (dst.mean(0) - scale * R @ src.mean(0))[:, None]])


def ref_arcface(session, crops_rgb):
    """(x - 127.5) / 127.5 RGB NCHW, L2-normalised output (mean 0 / std 1 for Sub+Mul graphs: not used here)."""
    blob = np.ascontiguousarray(((crops_rgb.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2))
    step = session.get_inputs()[0].shape[0] if isinstance(session.get_inputs()[0].shape[0], int) else len(blob)
    e = np.concatenate([session.run(None, {session.get_inputs()[0].name: blob[i : i + step]})[0]
                        for i in range(0, len(blob), step)])
    return e / np.linalg.norm(e, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------ planted files

def build_scrfd_random(path, seed: int = 0, batched: bool = False):
    """det_10g.onnx's layout with seeded random weights: continuous scores (no ties), boxes and points that
    vary per location and overlap their neighbours, so thresholding and NMS are both exercised. Score
    kernels have zero mean: the black letterbox padding scores sigmoid(-2) and is never a candidate."""
    rng = np.random.default_rng(seed)
    layers = {}
    for s in (8, 16, 32):
        w = rng.standard_normal((2, 3, s, s)).astype(np.float32) * (4.0 / s)
        w -= w.mean(axis=(1, 2, 3), keepdims=True)
        layers[s] = {
            "score": (w, np.full(2, -2.0, np.float32)),
            "bbox": (rng.standard_normal((8, 3, 1, 1)).astype(np.float32) * 0.3,
                     rng.uniform(1.0, 3.0, 8).astype(np.float32)),
            "kps": (rng.standard_normal((20, 3, 1, 1)).astype(np.float32) * 0.3,
                    rng.uniform(-1.5, 1.5, 20).astype(np.float32)),
        }
    return write_scrfd_onnx(path, layers, batched, "scrfd_random")


def _pictures(h, w, n=2, seed=0):
    """Random pictures, smooth blobs at several scales (no flat areas: equal scores would tie, and tied
    candidates may be kept in either order, here as before)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.zeros((h, w, 3), np.float32)
        for cell in (4, 16, 64):
            small = rng.uniform(0, 255, (max(1, h // cell), max(1, w // cell), 3)).astype(np.float32)
            img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / 3
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def _compare(dets, ref):
    boxes, scores, kps = ref
    assert len(dets) == len(boxes)
    # both keep score order after NMS; scores are continuous, so the orders match one to one
    np.testing.assert_allclose(np.array([d.box for d in dets]).reshape(-1, 4), boxes, atol=TOL, rtol=0)
    np.testing.assert_allclose(np.array([d.score for d in dets]), scores, atol=TOL, rtol=0)
    np.testing.assert_allclose(np.array([d.lm5 for d in dets]).reshape(-1, 5, 2), kps, atol=TOL, rtol=0)


# ------------------------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("h,w", [(480, 640), (320, 320), (700, 500)])
@pytest.mark.parametrize("batched", [False, True])
def test_scrfd_detections_and_landmarks_unchanged(tmp_path, h, w, batched):
    path = build_scrfd_random(tmp_path / "det_10g.onnx", seed=h + w, batched=batched)
    det = ScrfdDetector(path, landmarks=False)
    frames = _pictures(h, w, seed=h * w)
    got = det.detect(frames)
    ref = ref_scrfd(det.model.session, frames)
    assert sum(len(r[0]) for r in ref) > 100  # hundreds of faces kept out of thousands of candidates
    for dets, r in zip(got, ref):
        _compare(dets, r)


def test_scrfd_marker_model_unchanged(tmp_path):
    """The exact-position model of test_faces_scrfd (equal scores: the same set, whatever the tie order)."""
    det = ScrfdDetector(build_scrfd_like(tmp_path / "det_10g.onnx"), landmarks=False)
    for frame, scale_k in ((_frame(480, 640), 1), (_frame(960, 1280, 2), 2)):
        got = det.detect(frame[None])[0]
        boxes, scores, kps = ref_scrfd(det.model.session, frame[None])[0]
        key = lambda b: (round(float(b[0]), 3), round(float(b[1]), 3), round(float(b[2] - b[0]), 3))  # noqa: E731
        got_rows = sorted((key(d.box), d.box, d.score, d.lm5) for d in got)
        ref_rows = sorted((key(b), b, s, k) for b, s, k in zip(boxes, scores, kps))
        assert [r[0] for r in got_rows] == [r[0] for r in ref_rows] and len(got_rows) == 6
        for g, r in zip(got_rows, ref_rows):
            np.testing.assert_allclose(g[1], r[1], atol=TOL)
            np.testing.assert_allclose(g[2], r[2], atol=TOL)
            np.testing.assert_allclose(g[3], r[3], atol=TOL)


def test_alignment_transform_unchanged():
    from kling.perception.faces.align import estimate_norm

    rng = np.random.default_rng(0)
    base = np.array([[130, 100], [180, 102], [155, 130], [135, 160], [178, 158]], np.float64)
    for _ in range(200):
        lm5 = (base * rng.uniform(0.3, 4) + rng.normal(0, 6, (5, 2)) + rng.uniform(0, 500, 2)).astype(np.float32)
        for size in (112, 224, 128):
            np.testing.assert_allclose(estimate_norm(lm5, size), ref_estimate_norm(lm5, size), atol=TOL, rtol=0)


def test_arcface_embeddings_unchanged(tmp_path):
    from eval.identity.backbones import ArcFaceONNX

    model = ArcFaceONNX(make_arcface_onnx(tmp_path / "w600k_r50.onnx"))
    crops = np.random.default_rng(1).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.embed_crops(crops), ref_arcface(model.session, crops), atol=TOL, rtol=0)
    one = ArcFaceONNX(make_arcface_onnx(tmp_path / "one.onnx", batch=1))  # fixed batch: crop by crop
    np.testing.assert_allclose(one.embed_crops(crops), ref_arcface(one.session, crops), atol=TOL, rtol=0)


def test_arcface_on_faces_in_frames(tmp_path):
    """Detected face -> aligned crop -> embedding, end to end. insightface's warp carries its float32 template's
    rounding (~1e-6 of the transform, test_alignment_transform_unchanged), which moves a few pixels of a crop
    across cv2's 1/32-pixel interpolation grid: crops agree to a grey level or two on a handful of pixels and
    embeddings (of this random net) to ~1e-4, not 1e-5."""
    from eval.identity.backbones import ArcFaceONNX
    from kling.perception.faces.detection import Detection

    model = ArcFaceONNX(make_arcface_onnx(tmp_path / "w600k_r50.onnx"))
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (0, 0), 2)
    base = np.array([[130, 100], [180, 102], [155, 130], [135, 160], [178, 158]], np.float32)
    faces = [Detection(100, 60, 210, 190, 0.9, lm5=(base + rng.normal(0, 3, (5, 2))).astype(np.float32))
             for _ in range(20)]
    crops = np.stack([cv2.warpAffine(img, ref_estimate_norm(f.lm5), (112, 112), borderValue=0.0) for f in faces])
    ref = ref_arcface(model.session, crops)
    got = model.embed(img, faces)
    from kling.perception.faces.align import norm_crop

    ours = np.stack([norm_crop(img, f.lm5) for f in faces])
    changed = np.abs(ours.astype(int) - crops.astype(int))
    assert changed.max() <= 3 and (changed > 0).mean() < 1e-3
    np.testing.assert_allclose(got, ref, atol=1e-3, rtol=0)
    np.testing.assert_allclose(np.sum(got * ref, axis=1), 1.0, atol=1e-6)  # cosine to the old embedding
