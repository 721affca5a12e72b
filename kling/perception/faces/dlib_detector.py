"""dlib's HOG frontal face detector with its 68-point landmarks: the offline detector (face_recognition_models)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from kling.perception.faces.detection import Detection, as_batch, default_threads, lm5_from_box
from kling.perception.faces.landmarks import Dlib68Predictor, lm5_from_lm68
from kling.weights import sha256_of


class DlibDetector:
    """dlib HOG frontal face detector + 68-point landmarks.

    The HOG detector finds faces of about 80 px and up at the scale it runs on; it runs on a copy
    whose long side is `detect_side` (upsample=1 doubles that for small faces), which makes it
    ~5x faster on 512 px frames without losing talking-head faces. Landmarks are predicted on the
    full-resolution frame, so the returned points are not limited by the detection scale.
    `min_score` thresholds dlib's SVM score (0 = dlib's own default).
    """

    name = "dlib"

    def __init__(
        self,
        detect_side: int | None = 320,
        upsample: int = 0,
        min_score: float = 0.0,
        landmarks: bool = True,
        threads: int | None = None,
    ):
        import dlib

        self.detect_side = detect_side
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        # dlib's object_detector keeps its image pyramid in the object (not thread-safe): one per
        # worker thread. The shape predictor is const at run time and shared.
        self._local = threading.local()
        self._new_hog = dlib.get_frontal_face_detector
        self._lm = Dlib68Predictor() if landmarks else None
        self.threads = threads or default_threads()
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def info(self) -> dict:
        out = {
            "name": self.name,
            "detect_side": self.detect_side,
            "upsample": self.upsample,
            "min_score": self.min_score,
        }
        if self._lm is not None:
            out["landmarks"] = self._lm.model_path.name
            out["landmarks_sha256"] = sha256_of(self._lm.model_path)
        return out

    def _detect_one(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        scale = 1.0
        if self.detect_side and max(h, w) > self.detect_side:
            scale = self.detect_side / max(h, w)
        small = frame
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        # HOG on grey: ~25 % faster than on RGB with the same boxes on our clips.
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        hog = getattr(self._local, "hog", None)
        if hog is None:
            hog = self._local.hog = self._new_hog()
        rects, scores, _ = hog.run(grey, self.upsample, self.min_score)
        sx = w / small.shape[1]
        sy = h / small.shape[0]
        out = []
        for r, s in zip(rects, scores):
            box = (r.left() * sx, r.top() * sy, (r.right() + 1) * sx, (r.bottom() + 1) * sy)
            lm68 = self._lm.predict(frame, box) if self._lm is not None else None
            if lm68 is not None:
                lm5 = lm5_from_lm68(lm68)
            else:  # rough points from the box so that downstream code always has 5 points
                lm5 = lm5_from_box(box)
            out.append(Detection(*map(float, box), score=float(s), lm5=lm5, lm68=lm68))
        return out

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        frames = as_batch(frames)
        if self._pool is None or len(frames) == 1:
            return [self._detect_one(f) for f in frames]
        return list(self._pool.map(self._detect_one, frames))
