"""Head pose (yaw, pitch, roll in degrees) from 2-D facial landmarks with cv2.solvePnP.

A generic 3-D face (average adult proportions, millimetres; the classic nose/chin/eye-corner/mouth-corner
model used with solvePnP, plus eye centres for 5-point input) is fitted to the landmarks with a pinhole camera
whose focal length is the frame width and whose principal point is the frame centre (no distortion).

Model axes follow the camera: x to the image right, y down, z away from the camera, so a face looking straight
at the camera has R = I and yaw = pitch = roll = 0. Angles decompose R = Ry(yaw) @ Rx(pitch) @ Rz(roll)
(see :func:`euler_to_matrix`). Filters use absolute values, so the sign convention only matters for plots.
"""

from __future__ import annotations

import cv2
import numpy as np

# Generic 3-D points (mm), nose tip at the origin.
_MODEL = {
    "nose_tip": (0.0, 0.0, 0.0),
    "chin": (0.0, 66.0, 13.0),
    "eye_outer_l": (-45.0, -34.0, 27.0),  # "l" = image-left (the subject's right)
    "eye_outer_r": (45.0, -34.0, 27.0),
    "eye_inner_l": (-15.0, -33.0, 22.0),
    "eye_inner_r": (15.0, -33.0, 22.0),
    "eye_centre_l": (-31.0, -34.0, 22.0),
    "eye_centre_r": (31.0, -34.0, 22.0),
    "mouth_l": (-30.0, 30.0, 25.0),
    "mouth_r": (30.0, 30.0, 25.0),
}

# iBUG 68-point indices (0-based) of the model points.
_IDX68 = {
    "eye_outer_l": 36,
    "eye_inner_l": 39,
    "eye_inner_r": 42,
    "eye_outer_r": 45,
    "nose_tip": 30,
    "chin": 8,
    "mouth_l": 48,
    "mouth_r": 54,
}
# 5-point order of the face-track table (SCRFD/ArcFace): left eye, right eye, nose, left mouth, right mouth.
_NAMES5 = ("eye_centre_l", "eye_centre_r", "nose_tip", "mouth_l", "mouth_r")
_NAMES68 = tuple(_IDX68)


def model_points(kind: int) -> np.ndarray:
    """3-D model points (k, 3) float64 for 5-point or 68-point input, in the order the landmarks are used."""
    names = _NAMES5 if kind == 5 else _NAMES68 if kind == 68 else None
    if names is None:
        raise ValueError(f"landmark kind must be 5 or 68, got {kind}")
    return np.array([_MODEL[n] for n in names], np.float64)


def select_points(landmarks: np.ndarray) -> np.ndarray:
    """(n, K, 2) or (n, 2K) landmarks (K = 5 or 68) -> (n, k, 2) points matching :func:`model_points`."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim == 2:
        lm = lm.reshape(lm.shape[0], -1, 2)
    if lm.ndim != 3 or lm.shape[2] != 2 or lm.shape[1] not in (5, 68):
        raise ValueError(f"expected (n, 5|68, 2) landmarks, got {np.asarray(landmarks).shape}")
    if lm.shape[1] == 5:
        return lm
    return lm[:, [_IDX68[n] for n in _NAMES68]]


def camera_matrix(width: float, height: float) -> np.ndarray:
    return np.array([[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]], np.float64)


def euler_to_matrix(yaw, pitch, roll) -> np.ndarray:
    """Rotation matrices (n, 3, 3) = Ry(yaw) @ Rx(pitch) @ Rz(roll), angles in degrees (scalars or arrays)."""
    a, b, c = (np.radians(np.atleast_1d(np.asarray(v, np.float64))) for v in (yaw, pitch, roll))
    a, b, c = np.broadcast_arrays(a, b, c)
    n = a.shape[0]
    ry = np.zeros((n, 3, 3))
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 1, 1], ry[:, 2, 0], ry[:, 2, 2] = np.cos(a), np.sin(a), 1, -np.sin(a), np.cos(a)
    rx = np.zeros((n, 3, 3))
    rx[:, 0, 0], rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2] = 1, np.cos(b), -np.sin(b), np.sin(b), np.cos(b)
    rz = np.zeros((n, 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = np.cos(c), -np.sin(c), np.sin(c), np.cos(c), 1
    return ry @ rx @ rz


def matrix_to_euler(r: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations -> (n, 3) [yaw, pitch, roll] degrees, inverse of :func:`euler_to_matrix`."""
    r = np.asarray(r, np.float64).reshape(-1, 3, 3)
    pitch = np.arcsin(np.clip(-r[:, 1, 2], -1.0, 1.0))
    yaw = np.arctan2(r[:, 0, 2], r[:, 2, 2])
    roll = np.arctan2(r[:, 1, 0], r[:, 1, 1])
    return np.degrees(np.stack([yaw, pitch, roll], axis=1))


def project_model(
    yaw, pitch, roll, width: int, height: int, kind: int = 68, distance_mm: float = 600.0,
    offset_px: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Project the generic model at the given angles (used by tests and demos): (n, k, 2) image points.

    For kind=68 only the model's 8 indices are meaningful; the result has shape (n, 68, 2) with the rest NaN.
    """
    rot = euler_to_matrix(yaw, pitch, roll)
    pts3 = model_points(kind)
    cam = np.einsum("nij,kj->nki", rot, pts3) + np.array([0.0, 0.0, distance_mm])
    k = camera_matrix(width, height)
    uv = cam[..., :2] / cam[..., 2:3] * k[0, 0] + k[:2, 2] + np.asarray(offset_px)
    if kind == 5:
        return uv
    out = np.full((uv.shape[0], 68, 2), np.nan)
    out[:, [_IDX68[n] for n in _NAMES68]] = uv
    return out


def head_pose(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Head pose per frame: (n, 5|68, 2) landmarks in pixels -> (n, 3) [yaw, pitch, roll] degrees.

    Rows with a missing (NaN) landmark give NaN. Each frame is one solvePnP (SQPnP: global optimum, works
    from 3 points) refined by Levenberg-Marquardt; the angle conversion is vectorised.
    """
    pts = select_points(landmarks)
    obj = model_points(5 if pts.shape[1] == 5 else 68)
    k = camera_matrix(width, height)
    dist = np.zeros(4)
    rot = np.full((pts.shape[0], 3, 3), np.nan)
    ok = np.isfinite(pts).all(axis=(1, 2))
    for i in np.flatnonzero(ok):
        img = np.ascontiguousarray(pts[i])
        found, rvec, tvec = cv2.solvePnP(obj, img, k, dist, flags=cv2.SOLVEPNP_SQPNP)
        if not found:
            continue
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, dist, rvec, tvec)
        if tvec[2, 0] <= 0:  # behind the camera: a degenerate fit, not a pose
            continue
        rot[i] = cv2.Rodrigues(rvec)[0]
    out = np.full((pts.shape[0], 3), np.nan)
    good = np.isfinite(rot).all(axis=(1, 2))
    if good.any():
        out[good] = matrix_to_euler(rot[good])
    return out


def head_pose_from_tracks(face_tracks, width: int, height: int) -> np.ndarray:
    """(n_rows, 3) [yaw, pitch, roll] for a face-track table: lm68 where present, else lm5."""
    n = len(face_tracks)
    out = np.full((n, 3), np.nan)
    if n == 0:
        return out
    has68 = np.zeros(n, bool)
    if "lm68" in face_tracks.columns:
        lm68 = face_tracks["lm68"].to_numpy()
        has68 = np.array([v is not None and len(v) == 136 and np.isfinite(np.asarray(v, float)).all() for v in lm68])
        if has68.any():
            out[has68] = head_pose(np.stack([np.asarray(v, np.float64) for v in lm68[has68]]), width, height)
    rest = ~has68
    if rest.any() and "lm5" in face_tracks.columns:
        lm5 = face_tracks["lm5"].to_numpy()[rest]
        arr = np.stack([np.asarray(v, np.float64) if v is not None and len(v) == 10 else np.full(10, np.nan)
                        for v in lm5])
        out[rest] = head_pose(arr, width, height)
    return out
