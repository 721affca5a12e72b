"""Small faces in large frames: a wrapper that adds finer detection passes to any face detector.

Why: both back ends run at one fixed scale. dlib HOG runs on a copy with a 320 px long side and finds
faces of ~80 px there, so in a 576x768 frame it needs a face of ~190 px, at 4K ~960 px; SCRFD letterboxes
to 640 and finds faces of ~16 px there, ~96 px at 4K. Half-body and full-body footage goes blind.

How: pass 0 is the wrapped detector exactly as it is (so close-ups, where it finds the face, give the same
detections at the same cost). Only when pass 0 finds nothing, and only if pass 0 cannot already see faces
of `min_face` px, finer passes follow: the frame resized by a ladder of scales (each twice the previous,
ending at the scale where a `min_face` face reaches the back end's smallest size), each cut into
overlapping tiles that the back end sees at 1:1, tiles batched through its own `detect`, boxes mapped back
and merged by NMS. The ladder stops at the first pass that finds a face (`mode="first"`, for video) or
runs to the end and merges every pass (`mode="all"`, for reference images, where several faces and
their sizes matter and one image is cheap). Per-frame decisions only: a frame's detections never depend
on its neighbours or the batch it came in.

Landmarks stay at full resolution: fine-pass detections get dlib's 68 points predicted on the original
frame (dlib: in the HOG box; SCRFD: in a box derived from SCRFD's own 5 points, which are kept), as the
wrapped detectors do.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from kling.perception.faces.detection import Detection, FaceDetector, as_batch
from kling.perception.faces.landmarks import Dlib68Predictor, box_from_lm5, lm5_from_lm68

DEFAULT_MIN_FACE = 40  # px, face box width in the original frame
MAX_PASS_PIXELS = 40e6  # scaled pixels per tiled call (~120 MB of RGB): bounds memory at 4K x 2


@dataclass(frozen=True)
class Backend:
    """What the wrapper needs to know about a back end to run it at a chosen scale."""

    kind: str  # "dlib" | "scrfd"
    min_face: float  # smallest face box width (px) it finds at its input scale
    tile: int  # tile side fed to it at 1:1
    landmarks: bool  # whether the wrapped detector adds dlib 68 points

    def pass0_scale(self, base: FaceDetector, h: int, w: int) -> float:
        """The scale the wrapped detector itself runs a (h, w) frame at."""
        if self.kind == "dlib":
            side = base.detect_side
            return side / max(h, w) if side and max(h, w) > side else 1.0
        in_w, in_h = base.input_size  # scrfd letterbox: fits the frame, up or down
        return min(in_w / w, in_h / h)


def backend_of(base: FaceDetector) -> Backend:
    """The back end's facts for a dlib or SCRFD detector (TypeError for others)."""
    from kling.perception.faces.dlib_detector import DlibDetector
    from kling.perception.faces.scrfd import ScrfdDetector

    if isinstance(base, DlibDetector):  # HOG's window is 80x80 px
        return Backend("dlib", 80.0, 1024, "landmarks" in base.info())
    if isinstance(base, ScrfdDetector):  # smallest anchor 16 px at stride 8; tiles = its input size
        return Backend("scrfd", 16.0, int(min(base.input_size)), "landmarks" in base.info())
    raise TypeError(f"no multi-scale support for {type(base).__name__} (dlib and SCRFD only)")


def _tiler(base: FaceDetector, backend: Backend) -> FaceDetector:
    """A landmark-free twin of `base` that runs tiles at 1:1 (upsample 0: the ladder does the scaling)."""
    from kling.perception.faces.dlib_detector import DlibDetector
    from kling.perception.faces.scrfd import ScrfdDetector

    if backend.kind == "dlib":
        return DlibDetector(detect_side=None, upsample=0, min_score=base.min_score, landmarks=False,
                            threads=base.threads)
    return ScrfdDetector(base.model_path, input_size=base.input_size, det_thresh=base.det_thresh,
                         nms_thresh=base.nms_thresh, landmarks=False)


def scale_ladder(pass0: float, finest: float) -> list[float]:
    """Scales of the finer passes: finest, finest/2, ... above pass0, coarse to fine."""
    out = []
    s = finest
    while s > pass0 * 1.4:  # a pass barely finer than pass 0 costs more than it adds
        out.append(s)
        s /= 2
    return out[::-1]


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start positions along one axis: stride tile - overlap, the last tile flush with the end."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    n = math.ceil((length - tile) / stride) + 1
    return sorted({min(i * stride, length - tile) for i in range(n)})


def merge(dets: list[Detection], iou: float = 0.4, cover: float = 0.6) -> list[Detection]:
    """Keep detections in the given order of preference; drop any that overlaps a kept one.

    Overlap: IoU > `iou`, or intersection > `cover` of the smaller box (a face cut by a tile edge is
    found as a part inside the whole one).
    """
    kept: list[Detection] = []
    for d in dets:
        ok = True
        for k in kept:
            iw = min(d.x1, k.x1) - max(d.x0, k.x0)
            ih = min(d.y1, k.y1) - max(d.y0, k.y0)
            if iw <= 0 or ih <= 0:
                continue
            inter = iw * ih
            if inter / (d.area + k.area - inter) > iou or inter / max(1e-9, min(d.area, k.area)) > cover:
                ok = False
                break
        if ok:
            kept.append(d)
    return kept


class MultiScaleDetector:
    """Any dlib / SCRFD detector plus finer, tiled passes where it finds nothing (see module doc).

    min_face: smallest face box width (px, original frame) to find; mode: "first" (stop at the first pass
    with a face) or "all" (every pass, merged); fine_min_score: a stricter score for finer-pass hits
    (None: the back end's own threshold); tile: tile side of the finer passes (default: the back end's).
    `last_passes` holds, per frame of this thread's last call, the scales that were run (for reports that
    must say what was tried; thread-local, as loaders share one detector).
    """

    def __init__(self, base: FaceDetector, min_face: float = DEFAULT_MIN_FACE, mode: str = "first",
                 fine_min_score: float | None = None, tile: int | None = None):
        if mode not in ("first", "all"):
            raise ValueError(f"mode must be 'first' or 'all', not {mode!r}")
        if min_face <= 0:
            raise ValueError(f"min_face must be > 0, not {min_face}")
        self.backend = backend_of(base)
        self._tiler = _tiler(base, self.backend)
        self.base = base
        self.name = base.name
        self.min_face = float(min_face)
        self.mode = mode
        if tile is not None:
            if self.backend.kind == "scrfd" and tile != self.backend.tile:
                raise ValueError(f"SCRFD tiles are its input size ({self.backend.tile}), not {tile}")
            if tile < 4 * self.backend.min_face:
                raise ValueError(f"tile {tile} too small for the overlap a {self.backend.min_face:g} px face needs")
            self.backend = Backend(self.backend.kind, self.backend.min_face, int(tile), self.backend.landmarks)
        # finer passes see many more windows than pass 0: an optional stricter score for their hits
        self.fine_min_score = fine_min_score
        self._lm = Dlib68Predictor() if self.backend.landmarks else None
        self._local = threading.local()

    @property
    def last_passes(self) -> list[list[float]]:
        return getattr(self._local, "passes", [])

    def __getattr__(self, name: str):
        """The wrapped detector's own attributes (detect_side, input_size, model_path, ...) read through."""
        if name == "base":  # not set yet (during construction or unpickling)
            raise AttributeError(name)
        return getattr(self.base, name)

    def info(self) -> dict:
        return {**self.base.info(), "multiscale": {
            "min_face": self.min_face, "mode": self.mode, "fine_min_score": self.fine_min_score,
            "backend_min_face": self.backend.min_face, "tile": self.backend.tile}}

    def plan(self, h: int, w: int) -> list[float]:
        """All scales that may run on an (h, w) frame: pass 0's, then the finer ladder."""
        s0 = self.backend.pass0_scale(self.base, h, w)
        return [s0] + scale_ladder(s0, self.backend.min_face / self.min_face)

    def smallest_face(self, h: int, w: int) -> float:
        """Smallest face width (px) the full plan finds in an (h, w) frame."""
        return self.backend.min_face / max(self.plan(h, w))

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        frames = as_batch(frames)
        out = [list(d) for d in self.base.detect(frames)]
        plan = self.plan(*frames.shape[1:3])  # one size per batch (as_batch stacks them)
        passes = [[plan[0]] for _ in frames]
        todo = [i for i in range(len(frames)) if not (out[i] and self.mode == "first")]
        for prev, s in zip(plan, plan[1:]):
            if not todo:
                break
            # the frames still searching share tiled passes (the tiler's threads work across all their tiles),
            # as many frames at a time as keep the scaled copies under MAX_PASS_PIXELS
            h, w = frames.shape[1:3]
            per_call = max(1, int(MAX_PASS_PIXELS // max(1.0, h * w * s * s)))
            for k in range(0, len(todo), per_call):
                group = todo[k : k + per_call]
                for i, hits in zip(group, self._pass(frames[group], s, prev)):
                    passes[i].append(s)
                    out[i] = merge(out[i] + hits)
            if self.mode == "first":
                todo = [i for i in todo if not out[i]]
        self._local.passes = passes
        return out

    def _pass(self, frames: np.ndarray, s: float, prev: float) -> list[list[Detection]]:
        """One finer pass over frames of one size: each at scale s, tiled, detected at 1:1, mapped back,
        merged per frame.

        `prev` is the scale of the pass before: faces it could see are not needed whole here."""
        h, w = frames.shape[1:3]
        sw, sh = max(1, round(w * s)), max(1, round(h * s))
        tile = self.backend.tile
        # a face the previous pass could not see is < min_face * s / prev px here: the overlap holds it whole
        overlap = int(math.ceil(1.2 * self.backend.min_face * s / prev))
        th, tw = min(tile, sh), min(tile, sw)
        pad = self.backend.kind == "scrfd"  # fixed input: pad small frames so the letterbox stays 1:1
        if pad:
            th = tw = tile
        ys = tile_origins(max(sh, th), th, overlap)
        xs = tile_origins(max(sw, tw), tw, overlap)
        origins = [(y, x) for y in ys for x in xs]
        tiles = []
        for frame in frames:
            img = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            if pad and (sh < tile or sw < tile):
                img = cv2.copyMakeBorder(img, 0, max(0, tile - sh), 0, max(0, tile - sw), cv2.BORDER_CONSTANT)
            tiles += [img[y : y + th, x : x + tw] for y, x in origins]
        per_tile = self._tiler.detect(np.ascontiguousarray(np.stack(tiles)))
        results = []
        for k, frame in enumerate(frames):
            hits = []
            for (y, x), dets in zip(origins, per_tile[k * len(origins) : (k + 1) * len(origins)]):
                for d in dets:
                    if self.fine_min_score is not None and d.score < self.fine_min_score:
                        continue
                    box = ((d.x0 + x) / s, (d.y0 + y) / s, (d.x1 + x) / s, (d.y1 + y) / s)
                    if box[0] >= w or box[1] >= h:  # in the padding
                        continue
                    lm5 = (d.lm5 + np.array([x, y], np.float32)) / s
                    hits.append(self._complete(frame, box, d.score, lm5.astype(np.float32)))
            hits.sort(key=lambda d: -d.score)
            results.append(merge(hits))
        return results

    def _complete(self, frame: np.ndarray, box, score: float, lm5: np.ndarray) -> Detection:
        """A detection in frame pixels with landmarks predicted on the full-resolution frame."""
        lm68 = None
        if self._lm is not None:
            if self.backend.kind == "dlib":
                lm68 = self._lm.predict(frame, box)
                lm5 = lm5_from_lm68(lm68)
            else:  # SCRFD's own 5 points stay; the 68 come from a dlib-like box around them
                lm68 = self._lm.predict(frame, box_from_lm5(lm5))
        return Detection(*map(float, box), score=float(score), lm5=lm5, lm68=lm68)


def describe_search(detector: FaceDetector, h: int, w: int) -> dict:
    """What the last `detect` call on one (h, w) image tried: detector, scales, smallest face it could see.

    For a MultiScaleDetector the scales it ran; for a plain dlib / SCRFD detector its one scale."""
    if isinstance(detector, MultiScaleDetector):
        ran = detector.last_passes[0] if detector.last_passes else detector.plan(h, w)
        backend, name, extra = detector.backend, detector.base.name, {"mode": detector.mode}
    else:
        try:
            backend = backend_of(detector)
        except TypeError:
            return {"detector": getattr(detector, "name", type(detector).__name__), "image_wh": [w, h]}
        ran, name, extra = [backend.pass0_scale(detector, h, w)], detector.name, {}
    return {"detector": name, "image_wh": [w, h], "scales": [round(float(s), 4) for s in ran],
            "smallest_face_px": round(backend.min_face / max(ran), 1), **extra}


def search_text(tried: dict) -> str:
    """describe_search's dict as a phrase for a reason string."""
    if "scales" not in tried:
        return f"{tried['detector']} on the {tried['image_wh'][0]}x{tried['image_wh'][1]} image"
    scales = ", ".join(f"{s:g}" for s in tried["scales"])
    return (f"{tried['detector']} at scale(s) {scales} of the {tried['image_wh'][0]}x{tried['image_wh'][1]} "
            f"image, faces down to ~{tried['smallest_face_px']:g} px wide")


def largest_face_report(image: np.ndarray, detector: FaceDetector) -> tuple[Detection | None, dict]:
    """The largest face of one image, and a report: every face found (index, box, width, height, score),
    the index chosen (None when none) and what was tried (describe_search).

    With a "first"-mode MultiScaleDetector the faces listed are those of the first scale that found any:
    a smaller face elsewhere in the image is not searched for, since the largest is the one chosen."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    dets = detector.detect(image[None])[0]
    faces = [{"index": i, "box": [round(float(v), 1) for v in (d.x0, d.y0, d.x1, d.y1)],
              "width": round(float(d.x1 - d.x0), 1), "height": round(float(d.y1 - d.y0), 1),
              "score": round(float(d.score), 3)} for i, d in enumerate(dets)]
    chosen = max(range(len(dets)), key=lambda i: dets[i].area) if dets else None
    report = {"n_faces": len(dets), "chosen": chosen, "faces": faces, "tried": describe_search(detector, h, w)}
    return (dets[chosen] if chosen is not None else None), report
