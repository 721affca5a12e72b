"""LMD: mouth landmark distance between generated and ground-truth frames (the lip-sync literature's
landmark distance), with dlib's 68 points and no downloaded weights.

Protocol ``lmd-v1`` (recorded in PROTOCOL and in every row):
1. Both videos on the 25 fps timeline; frame i is compared with frame i over the first min(n_gen, n_truth)
   frames. The generated frame is first resized to the ground truth's size (as pixels-v1).
2. Per frame: the largest face found by the detector (kling.perception.faces.detect.load_detector, the
   project's "auto" choice; its name is the row's backbone), then dlib's 68-point predictor on that box.
3. Alignment: a similarity transform (Umeyama, rotation + uniform scale + translation) maps the generated
   frame's rigid points (brows, nose, eyes: indices 17-47) onto the ground truth's same points, and is
   applied to the generated mouth points (48-67). Head pose and framing differences are removed; only the
   mouth's shape and motion remain.
4. Distance: mean Euclidean distance over the 20 mouth points, divided by the ground truth frame's
   inter-ocular distance (outer eye corners 36 and 45), so the value is in inter-ocular units and
   independent of resolution.
5. Clip value: mean over frames where both faces are found (stderr over those frames); `lmd_face_rate`
   (frames with both faces / frames compared) is reported beside it. No frame with both faces =>
   `unavailable` with the reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from eval.fidelity.pixels import paired_chunks, resize_to

PROTOCOL_VERSION = "lmd-v1"
RIGID = slice(17, 48)
MOUTH = slice(48, 68)
PROTOCOL = {"name": PROTOCOL_VERSION, "landmarks": "dlib 68 (shape_predictor_68_face_landmarks)",
            "face": "largest detected face per frame", "alignment": "Umeyama similarity on points 17-47 (gen -> truth)",
            "mouth": "points 48-67", "normalisation": "truth inter-ocular distance (points 36, 45)",
            "aggregation": "mean over frames with both faces; face rate reported", "resize": "as pixels-v1"}


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) mapping src (n, 2) onto dst (n, 2), as a 2x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    e = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ e @ vt
    scale = float((sig * np.diag(e)).sum() / s.var(0).sum())
    return np.hstack([scale * r, (mu_d - scale * r @ mu_s)[:, None]])


def frame_lmd(gen68: np.ndarray, truth68: np.ndarray) -> float:
    """LMD of one frame pair of (68, 2) landmarks (inter-ocular units)."""
    m = similarity(gen68[RIGID].astype(np.float64), truth68[RIGID].astype(np.float64))
    mouth = gen68[MOUTH].astype(np.float64) @ m[:2, :2].T + m[:2, 2]
    iod = float(np.linalg.norm(truth68[36] - truth68[45]))
    return float(np.linalg.norm(mouth - truth68[MOUTH], axis=1).mean() / max(iod, 1e-6))


class LandmarkReader:
    def __init__(self, detector: str = "auto"):
        from kling.perception.faces.detect import load_detector
        from kling.perception.faces.landmarks import Dlib68Predictor

        self.detector = load_detector(detector)
        self.name = self.detector.info().get("name", detector) if hasattr(self.detector, "info") else detector
        self.predictor = Dlib68Predictor()

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        dets = self.detector.detect(frame[None])[0]
        if not dets:
            return None
        box = max(dets, key=lambda d: d.area).box
        return self.predictor.predict(frame, box)


def lmd_values(generated: np.ndarray, truth: np.ndarray, reader: LandmarkReader) -> tuple[np.ndarray, int]:
    """Per-frame LMD (NaN where a face is missing) and the number of frames compared."""
    n = min(len(generated), len(truth))
    out = np.full(n, np.nan)
    for i in range(n):
        t = reader(truth[i])
        g = reader(resize_to(generated[i], truth.shape[1:3])) if t is not None else None
        if g is not None:
            out[i] = frame_lmd(g, t)
    return out, n


def lmd_rows(generated: str | Path, truth: str | Path, clip_id: str, reader: LandmarkReader | None = None) -> list[dict]:
    reader = reader or LandmarkReader()
    parts = [lmd_values(g, r, reader) for g, r in paired_chunks(generated, truth)]
    values = np.concatenate([v for v, _ in parts]) if parts else np.zeros(0)
    n = int(sum(k for _, k in parts))
    ok = np.isfinite(values)
    base = {"clip_id": clip_id, "window": "all", "backbone": f"dlib68+{reader.name}", "backbone_sha256": "",
            "protocol_version": PROTOCOL_VERSION}
    rate = {**base, "metric": "lmd_face_rate", "value": float(ok.mean()) if n else 0.0, "stderr": None, "n": int(n),
            "higher_is_better": True, "status": "ok", "reason": None}
    if not ok.any():
        return [{**base, "metric": "lmd", "value": None, "stderr": None, "n": 0, "higher_is_better": False,
                 "status": "unavailable", "reason": "no frame where both the generated and the true face are found"}, rate]
    v = values[ok]
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return [{**base, "metric": "lmd", "value": float(v.mean()), "stderr": se, "n": int(len(v)), "higher_is_better": False,
             "status": "ok", "reason": None}, rate]
