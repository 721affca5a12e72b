"""5-point face alignment onto the ArcFace template, as insightface's utils/face_align.py does.

insightface estimates a similarity transform (skimage SimilarityTransform.estimate = Umeyama 1991
least squares with scale) from the 5 detected points to `arcface_dst`, scaled by image_size/112
(or image_size/128 plus an 8*ratio x shift for multiples of 128), and warps with cv2.warpAffine,
bilinear, constant black border. skimage is not a dependency; `umeyama` below is the same solver.
"""

from __future__ import annotations

import cv2
import numpy as np

# insightface face_align.arcface_dst: the 5 points of a 112x112 ArcFace crop (image-left eye,
# image-right eye, nose tip, image-left mouth corner, image-right mouth corner).
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


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """(3, 3) least-squares similarity (rotation, uniform scale, translation) mapping src -> dst.

    Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
    PAMI 1991, eq. 40-43 (reflection excluded through the sign matrix S).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_d, dst_d = src - src_mean, dst - dst_mean
    cov = dst_d.T @ src_d / n
    U, S, Vt = np.linalg.svd(cov)
    if np.linalg.matrix_rank(cov) == 0:  # all points coincide: no transform defined
        return np.full((dim + 1, dim + 1), np.nan)
    # Proper rotation only: flip the last axis when U Vt would be a reflection. (With a rank-
    # deficient cov, S[-1] = 0 and the flip leaves the scale unchanged.)
    d = np.ones(dim)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        d[-1] = -1
    T = np.eye(dim + 1)
    T[:dim, :dim] = U @ np.diag(d) @ Vt
    scale = (S @ d) / src_d.var(axis=0).sum() if estimate_scale else 1.0
    T[:dim, dim] = dst_mean - scale * (T[:dim, :dim] @ src_mean)
    T[:dim, :dim] *= scale
    return T


def arcface_template(image_size: int = 112) -> np.ndarray:
    """The template for an image_size crop (multiple of 112, or of 128 with insightface's x shift)."""
    if image_size % 112 == 0:
        ratio, diff_x = image_size / 112.0, 0.0
    elif image_size % 128 == 0:
        ratio = image_size / 128.0
        diff_x = 8.0 * ratio
    else:
        raise ValueError(f"image_size must be a multiple of 112 or 128, got {image_size}")
    dst = ARCFACE_DST * ratio
    dst[:, 0] += diff_x
    return dst


def estimate_norm(lm5: np.ndarray, image_size: int = 112) -> np.ndarray:
    """(2, 3) float64 affine matrix taking the 5 points onto the ArcFace template."""
    lm5 = np.asarray(lm5, dtype=np.float64)
    if lm5.shape != (5, 2):
        raise ValueError(f"expected (5, 2) landmarks, got {lm5.shape}")
    return umeyama(lm5, arcface_template(image_size), True)[:2, :]


def norm_crop(img: np.ndarray, lm5: np.ndarray, image_size: int = 112) -> np.ndarray:
    """The aligned image_size x image_size crop (outside the frame is black)."""
    M = estimate_norm(lm5, image_size)
    return cv2.warpAffine(img, M, (image_size, image_size), borderValue=0.0)
