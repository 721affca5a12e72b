"""Facial landmarks: dlib's 68-point predictor, the 68 -> 5 point reduction and mouth opening.

Point order follows iBUG-300W (68) and insightface (5): image-left eye centre, image-right eye
centre, nose tip, image-left mouth corner, image-right mouth corner.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

# iBUG-68 indices. "left" here means image-left (the subject's right side).
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP = 30
_MOUTH_LEFT = 48
_MOUTH_RIGHT = 54
# Inner lip pairs (upper, lower): 61-67, 62-66, 63-65.
_INNER_UPPER = [61, 62, 63]
_INNER_LOWER = [67, 66, 65]

# dlib-style face box from 5 points, fitted on dlib HOG boxes of real faces (the HDTF clips and
# portraits in the shared test data, 65 faces): side = 2.26 * mean(eye-mouth distance,
# inter-ocular distance), centre 41 % of the way from the eye midpoint to the mouth midpoint.
# The 68-point predictor was trained on HOG boxes, so boxes from other detectors (SCRFD's include
# the forehead) are re-derived this way before predicting.
_BOX_SIDE_PER_SCALE = 2.26
_BOX_CENTRE_ALONG_EYE_MOUTH = 0.41

DLIB_MODEL_FILES = {
    "shape_68": "shape_predictor_68_face_landmarks.dat",
    "shape_5": "shape_predictor_5_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "mmod_human_face_detector.dat",
}


def dlib_model_path(key: str) -> Path:
    """Path of a model file shipped by the face_recognition_models package.

    Found with importlib instead of importing the package: its __init__ imports pkg_resources
    (removed in setuptools 81) and warns on every import.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "face_recognition_models is not installed (pip install face_recognition_models)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / DLIB_MODEL_FILES[key]
    if not path.is_file():
        raise FileNotFoundError(f"dlib model file missing: {path}")
    return path


def lm5_from_lm68(lm68: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (..., 5, 2) float32 in insightface order (eye centres are 6-point means)."""
    lm68 = np.asarray(lm68, dtype=np.float32)
    return np.stack(
        [
            lm68[..., _LEFT_EYE, :].mean(axis=-2),
            lm68[..., _RIGHT_EYE, :].mean(axis=-2),
            lm68[..., _NOSE_TIP, :],
            lm68[..., _MOUTH_LEFT, :],
            lm68[..., _MOUTH_RIGHT, :],
        ],
        axis=-2,
    ).astype(np.float32)


def mouth_open(lm68: np.ndarray) -> np.ndarray | float:
    """Inner-lip gap divided by inter-ocular distance, for (68, 2) or (..., 68, 2) landmarks.

    Scale-free so that it is comparable across face sizes; ~0 for a closed mouth, ~0.3-0.6 wide open.
    """
    lm68 = np.asarray(lm68, dtype=np.float32)
    gap = np.linalg.norm(lm68[..., _INNER_UPPER, :] - lm68[..., _INNER_LOWER, :], axis=-1).mean(-1)
    eyes = np.linalg.norm(
        lm68[..., _LEFT_EYE, :].mean(-2) - lm68[..., _RIGHT_EYE, :].mean(-2), axis=-1
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(eyes > 0, gap / eyes, np.nan).astype(np.float32)
    return float(out) if out.ndim == 0 else out


def box_from_lm5(lm5: np.ndarray) -> tuple[float, float, float, float]:
    """A dlib-HOG-like square box (x0, y0, x1, y1) around a face given by its 5 points."""
    lm5 = np.asarray(lm5, dtype=np.float64)
    eye = lm5[:2].mean(axis=0)
    mouth = lm5[3:].mean(axis=0)
    scale = 0.5 * (np.linalg.norm(mouth - eye) + np.linalg.norm(lm5[1] - lm5[0]))
    cx, cy = eye + _BOX_CENTRE_ALONG_EYE_MOUTH * (mouth - eye)
    half = 0.5 * _BOX_SIDE_PER_SCALE * scale
    return (float(cx - half), float(cy - half), float(cx + half), float(cy + half))


@lru_cache(maxsize=4)
def _load_shape_predictor(path: str):
    """One loaded predictor per file (the 68-point model is 100 MB and takes ~1 s to load); dlib's
    shape_predictor is read-only at run time, so detectors and threads share it."""
    import dlib

    return dlib.shape_predictor(path)


class Dlib68Predictor:
    """dlib's 68-point shape predictor (iBUG-300W, from face_recognition_models)."""

    def __init__(self, model_path: str | Path | None = None):
        import dlib

        self.model_path = Path(model_path) if model_path else dlib_model_path("shape_68")
        self._predictor = _load_shape_predictor(str(self.model_path.resolve()))
        self._dlib = dlib

    def shape(self, image: np.ndarray, box) -> object:
        """The raw dlib.full_object_detection for a box (x0, y0, x1, y1) in image pixels."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        return self._predictor(image, self._dlib.rectangle(x0, y0, x1, y1))

    def predict(self, image: np.ndarray, box) -> np.ndarray:
        """(68, 2) float32 landmarks of the face in box on an RGB (or grey) uint8 image."""
        s = self.shape(image, box)
        return np.array([(p.x, p.y) for p in s.parts()], dtype=np.float32)
