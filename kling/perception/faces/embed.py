"""Offline identity embedding: dlib's ResNet face descriptor (128-d, face_recognition_models).

dlib aligns the face chip itself from the 68-point shape (get_face_chip, 150x150, padding 0.25)
and runs its ResNet-29 metric network; same-person descriptors are within ~0.6 Euclidean
distance. num_jitters=0: one deterministic pass, no random crops. The model file's sha256 goes
into every output as `backbone_sha256`, so embeddings from different files are never mixed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from kling.perception.faces.detection import Detection
from kling.perception.faces.landmarks import Dlib68Predictor, box_from_lm5, dlib_model_path
from kling.weights import sha256_of

BACKBONE = "dlib_resnet_v1"
EMBED_DIM = 128


@lru_cache(maxsize=4)
def _load_recognition_model(path: str):
    """One loaded ResNet per file (~0.1 s a load): the cascade makes an encoder for every video's keyframes; the
    network is read-only at run time, so encoders share it."""
    import dlib

    return dlib.face_recognition_model_v1(path)


class DlibFaceEncoder:
    """128-d identity descriptors for detected faces (uses their 68 points, predicting them if absent)."""

    name = BACKBONE
    dim = EMBED_DIM

    def __init__(self, model_path: str | Path | None = None, padding: float = 0.25):
        import dlib

        self._dlib = dlib
        self.model_path = Path(model_path) if model_path else dlib_model_path("resnet")
        self._net = _load_recognition_model(str(self.model_path))
        self.padding = float(padding)
        self._lm: Dlib68Predictor | None = None

    @property
    def backbone_sha256(self) -> str:
        return sha256_of(self.model_path)

    def info(self) -> dict:
        return {"backbone": self.name, "backbone_sha256": self.backbone_sha256, "num_jitters": 0,
                "padding": self.padding, "dim": self.dim}

    def _shape(self, image: np.ndarray, det: Detection):
        """dlib full_object_detection from the detection's 68 points (predicted when missing)."""
        dlib = self._dlib
        lm68 = det.lm68
        if lm68 is None:
            if self._lm is None:
                self._lm = Dlib68Predictor()
            lm68 = self._lm.predict(image, box_from_lm5(det.lm5))
        rect = dlib.rectangle(*(int(round(v)) for v in (det.x0, det.y0, det.x1, det.y1)))
        pts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm68])
        return dlib.full_object_detection(rect, pts)

    def embed(self, image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """(n, 128) float32 descriptors of the given faces in one RGB uint8 image."""
        if len(detections) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        image = np.ascontiguousarray(image)
        shapes = self._dlib.full_object_detections()
        for det in detections:
            shapes.append(self._shape(image, det))
        desc = self._net.compute_face_descriptor(image, shapes, 0, self.padding)
        return np.array([np.asarray(d) for d in desc], dtype=np.float32)

    def embed_largest(self, image: np.ndarray, detector) -> np.ndarray | None:
        """Descriptor of the largest face the detector finds in the image, or None without a face."""
        dets = detector.detect(np.asarray(image)[None])[0]
        if not dets:
            return None
        return self.embed(image, [max(dets, key=lambda d: d.area)])[0]


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance, dlib's metric (same person below ~0.6)."""
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
