"""LMD: mouth landmark distance between generated and ground-truth frames (the lip-sync literature's
landmark distance), with dlib's 68 points and no downloaded weights.

Protocol ``lmd-v2`` (recorded in PROTOCOL and in every row):
1. Both videos on the 25 fps timeline; frame i is compared with frame i over the first min(n_gen, n_truth)
   frames (each video's length as its face-track table's summary records it).
2. Landmarks: each video's face-track table (kling.perception.faces.tracks.shot_aware_tracks: the project's
   detector, the "auto" choice, whose name is the row's backbone, dlib's 68-point predictor on each face,
   tracks split at scene cuts, tracks shorter than 1 s dropped). Per frame, the face is the table's row of
   that frame with the largest box area (ties: the lower track id); the frame has a face only when that
   row's 68 points were measured (not `interpolated` by the tracker across a missed detection, which would
   be a guess of the mouth, and not missing). The generated points are scaled to the ground truth's frame
   size (per axis, as v1 resized the generated frame).
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

What changed from v1, and why: v1 ran its own detector + predictor on every frame of both videos, a second
detection pass over the generated video beside the face tracks every other metric reads, and a detection of
every ground-truth frame again for every system scored against it. v2 reads the landmarks from the face
tracks: the generated video's are the table the evaluation suite already computed for lip sync, identity and
adherence (one detection pass for all of them), the ground truth's are computed once per file and cached
(eval.fidelity.truth_tracks), so a benchmark's ground truth is tracked once whatever the number of systems.
The face of a frame is now the largest face of the tracks, which means faces seen for under 1 s (the
tracker's min_len) and frames the tracker only interpolated do not count; detection runs on the generated
video at its own size (v1 resized it to the ground truth's first), its points are scaled instead.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

PROTOCOL_VERSION = "lmd-v2"
RIGID = slice(17, 48)
MOUTH = slice(48, 68)
PROTOCOL = {"name": PROTOCOL_VERSION, "landmarks": "dlib 68 (shape_predictor_68_face_landmarks), from the face tracks",
            "face": "largest-area face-track row per frame, measured (not interpolated) 68 points only",
            "tracks": "kling.perception.faces.tracks.shot_aware_tracks; ground truth's cached per file",
            "scale": "generated points scaled per axis to the ground truth's frame size",
            "alignment": "Umeyama similarity on points 17-47 (gen -> truth)",
            "mouth": "points 48-67", "normalisation": "truth inter-ocular distance (points 36, 45)",
            "aggregation": "mean over frames with both faces; face rate reported"}


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


def frame_landmarks(tracks: pd.DataFrame) -> dict[int, np.ndarray]:
    """Frame -> (68, 2) landmarks of the frame's face (protocol step 2): its largest-area row (ties: lower
    track id), kept only when that row's 68 points were measured."""
    if len(tracks) == 0:
        return {}
    area = (tracks["x1"] - tracks["x0"]).astype(np.float64) * (tracks["y1"] - tracks["y0"]).astype(np.float64)
    order = pd.DataFrame({"frame": tracks["frame"].to_numpy(), "area": area.to_numpy(),
                          "track_id": tracks["track_id"].to_numpy()})
    order = order.sort_values(["frame", "area", "track_id"], ascending=[True, False, True], kind="stable")
    first = order.drop_duplicates("frame", keep="first").index
    out = {}
    for frame, lm68, interpolated in zip(tracks.loc[first, "frame"], tracks.loc[first, "lm68"],
                                         tracks.loc[first, "interpolated"]):
        if lm68 is not None and not bool(interpolated) and len(lm68) == 136:
            out[int(frame)] = np.asarray(lm68, np.float64).reshape(68, 2)
    return out


def _summary(tracks: pd.DataFrame, which: str) -> dict:
    summary = tracks.attrs.get("face_track_summary")
    if not summary or summary.get("n_frames") is None:
        raise ValueError(f"the {which} face tracks carry no summary (attrs['face_track_summary'] of shot_aware_tracks)")
    return summary


def lmd_values(generated: pd.DataFrame, truth: pd.DataFrame) -> tuple[np.ndarray, int]:
    """Per-frame LMD of two face-track tables (NaN where a face is missing) and the number of frames compared."""
    gs, ts = _summary(generated, "generated"), _summary(truth, "ground-truth")
    n = min(int(gs["n_frames"]), int(ts["n_frames"]))
    out = np.full(n, np.nan)
    gen, ref = frame_landmarks(generated), frame_landmarks(truth)
    both = sorted(f for f in gen.keys() & ref.keys() if f < n)
    if both:
        scale = np.array([ts["frame_width"] / gs["frame_width"], ts["frame_height"] / gs["frame_height"]])
        for f in both:
            out[f] = frame_lmd(gen[f] * scale, ref[f])
    return out, n


def backbone(detector) -> tuple[str, str]:
    """The rows' backbone (dlib68 + the detector's name) and its sha256 (the 68-point predictor's file)."""
    info = detector.info() if hasattr(detector, "info") else {"name": getattr(detector, "name", str(detector))}
    return f"dlib68+{info.get('name', '?')}", str(info.get("landmarks_sha256") or "")


def lmd_rows_from_tracks(generated: pd.DataFrame, truth: pd.DataFrame, clip_id: str, detector) -> list[dict]:
    """LMD and lmd_face_rate rows of one case from its two face-track tables (`detector`: the one that made
    them, for the backbone columns)."""
    from kling.perception.faces.tracks import no_track_reason

    values, n = lmd_values(generated, truth)
    ok = np.isfinite(values)
    name, sha = backbone(detector)
    base = {"clip_id": clip_id, "window": "all", "backbone": name, "backbone_sha256": sha,
            "protocol_version": PROTOCOL_VERSION}
    rate = {**base, "metric": "lmd_face_rate", "value": float(ok.mean()) if n else 0.0, "stderr": None, "n": int(n),
            "higher_is_better": True, "status": "ok", "reason": None}
    if not ok.any():
        why = ["{}: {}: {}".format(which, *no_track_reason(t.attrs["face_track_summary"]))
               for which, t in (("generated", generated), ("ground truth", truth)) if len(t) == 0]
        reason = "no frame where both the generated and the true face are found" + (f" ({'; '.join(why)})" if why else "")
        return [{**base, "metric": "lmd", "value": None, "stderr": None, "n": 0, "higher_is_better": False,
                 "status": "unavailable", "reason": reason}, rate]
    v = values[ok]
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return [{**base, "metric": "lmd", "value": float(v.mean()), "stderr": se, "n": int(len(v)), "higher_is_better": False,
             "status": "ok", "reason": None}, rate]


def lmd_rows(generated: str | Path, truth: str | Path, clip_id: str, detector=None, cache: bool = True) -> list[dict]:
    """LMD rows of a generated video against its ground truth, as the evaluation suite gives them: both videos'
    face tracks (the ground truth's from the cache unless `cache` is False). `detector`: a detector or a name
    for load_detector (None: "auto")."""
    from eval.fidelity.truth_tracks import truth_tracks
    from kling.perception.faces.detect import load_detector
    from kling.perception.faces.tracks import shot_aware_tracks

    if detector is None or isinstance(detector, str):
        detector = load_detector(detector or "auto")
    return lmd_rows_from_tracks(shot_aware_tracks(generated, detector), truth_tracks(truth, detector, enabled=cache),
                                clip_id, detector)
