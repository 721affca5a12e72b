"""5-point face alignment onto the ArcFace template: insightface's own `utils.face_align`.

insightface estimates a similarity transform (skimage SimilarityTransform, Umeyama least squares with
scale) from the 5 detected points to its `arcface_dst` template scaled by image_size/112 (or
image_size/128 plus an 8*ratio x shift for multiples of 128), and warps with cv2.warpAffine, bilinear,
black border. Its template is float32 and skimage solves in the points' dtype, so the transform carries
float32 rounding (~1e-5 of the matrix); the points go in as float64 so that only the template's remains.
"""

from __future__ import annotations

import warnings

import numpy as np

# insightface face_align.arcface_dst (the same array, without importing insightface to read it): the 5
# points of a 112x112 ArcFace crop (image-left eye, image-right eye, nose tip, image-left mouth corner,
# image-right mouth corner).
ARCFACE_DST = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def _points(lm5: np.ndarray, image_size: int) -> np.ndarray:
    lm5 = np.asarray(lm5, dtype=np.float64)
    if lm5.shape != (5, 2):
        raise ValueError(f"expected (5, 2) landmarks, got {lm5.shape}")
    if image_size % 112 and image_size % 128:
        raise ValueError(f"image_size must be a multiple of 112 or 128, got {image_size}")
    return lm5


def _quiet(fn, *args):
    """skimage 0.26 deprecated SimilarityTransform.estimate, which insightface 2.1 calls on every alignment:
    the FutureWarning is about a future skimage, not about this result."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`estimate` is deprecated", category=FutureWarning)
        return fn(*args)


def estimate_norm(lm5: np.ndarray, image_size: int = 112) -> np.ndarray:
    """(2, 3) float64 affine matrix taking the 5 points onto the ArcFace template (insightface)."""
    from insightface.utils import face_align

    return _quiet(face_align.estimate_norm, _points(lm5, image_size), image_size)


def norm_crop(img: np.ndarray, lm5: np.ndarray, image_size: int = 112) -> np.ndarray:
    """The aligned image_size x image_size crop (outside the frame is black), insightface's norm_crop."""
    from insightface.utils import face_align

    return _quiet(face_align.norm_crop, img, _points(lm5, image_size), image_size)
