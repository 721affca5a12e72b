"""How the avatar model sees a face: a square window around the face box, resized to the model's side.

Training shards and generation frame faces the same way: centre = the face box's centre (shifted down a
little so the chin and mouth sit mid-frame), side = `scale` x the box's longer side, clipped to the image
by padding with edge pixels (so any framing of the input works).
"""

from __future__ import annotations

import cv2
import numpy as np

# 1.4: the face fills the tiny model's 64-px window. At 1.8 the mouth was ~8 px wide there, and the tiny model's
# held-out faces lost their identity (bo_talk, cal_talk: no face found in the generated video); at 1.4 every one
# of the three measured keeps its face (glasses, hair) with the same training budget.
SCALE = 1.4
DROP = 0.1  # centre shift down, in box sides


def face_window(box, scale: float = SCALE) -> np.ndarray:
    """(x0, y0, x1, y1) face box -> square window (x0, y0, side) in image pixels (floats)."""
    x0, y0, x1, y1 = map(float, box)
    side = scale * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + DROP * (y1 - y0)
    return np.array([cx - side / 2, cy - side / 2, side], dtype=np.float64)


def crop_matrix(window: np.ndarray, out_side: int) -> np.ndarray:
    """2x3 affine from image pixels to window pixels."""
    x0, y0, side = window
    s = out_side / side
    return np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)


def crop(image: np.ndarray, window: np.ndarray, out_side: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (out_side, out_side, 3), area-averaged, edges replicated."""
    m = crop_matrix(window, out_side)
    interp = cv2.INTER_AREA if out_side < window[2] else cv2.INTER_CUBIC
    return cv2.warpAffine(image, m, (out_side, out_side), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def to_window(points: np.ndarray, window: np.ndarray, out_side: int) -> np.ndarray:
    """(..., 2) image points -> window pixels."""
    x0, y0, side = window
    return (np.asarray(points, dtype=np.float64) - [x0, y0]) * (out_side / side)


def paste(image: np.ndarray, face: np.ndarray, window: np.ndarray, feather: float = 0.08) -> np.ndarray:
    """Put a generated window back into `image` (inverse of `crop`), blending over a feathered border."""
    h, w = image.shape[:2]
    m = cv2.invertAffineTransform(crop_matrix(window, face.shape[0]))
    back = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    n = face.shape[0]
    ramp = np.clip(np.minimum(np.arange(n), np.arange(n)[::-1]) / max(1.0, feather * n), 0, 1)
    alpha = cv2.warpAffine(np.outer(ramp, ramp).astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    return (alpha * back + (1 - alpha) * image).round().clip(0, 255).astype(np.uint8)
