"""CSIM of one video against one or more reference faces: the plain function an asset or the CLI calls.

Streams the video once on the protocol timeline, embeds only the faces of sampled frames, and keeps one row of
``n_refs`` cosines per face, so memory stays flat in video length. See eval.identity.csim for the protocol.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from eval.identity.backbones import BackboneUnavailable, FaceBackbone, load_backbone
from eval.identity.csim import IdentityResult, clip_csim, protocol, score_faces

log = logging.getLogger(__name__)


def load_image_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8; unreadable files raise kling.io.errors.UnreadableMediaError."""
    from kling.io.errors import UnreadableMediaError

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UnreadableMediaError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def largest_face(image: np.ndarray, detector):
    dets = detector.detect(np.asarray(image)[None])[0]
    return max(dets, key=lambda d: d.area) if dets else None


def reference_embeddings(paths: list[str | Path], backbone: FaceBackbone, detector) -> tuple[np.ndarray, list[str]]:
    """(n_refs, dim) embeddings of the largest face in each image; raises ValueError naming a faceless image."""
    embs, missing = [], []
    for p in paths:
        img = load_image_rgb(p)
        det = largest_face(img, detector)
        if det is None:
            missing.append(str(p))
            continue
        embs.append(backbone.embed(img, [det])[0])
    if missing:
        raise ValueError(f"no face found in reference image(s): {', '.join(missing)}")
    return np.stack(embs), [str(p) for p in paths]


def _detection_from_row(row):
    from kling.curate.detect import Detection

    lm68 = row.lm68
    lm68 = None if lm68 is None or len(lm68) != 136 else np.asarray(lm68, np.float32).reshape(68, 2)
    return Detection(float(row.x0), float(row.y0), float(row.x1), float(row.y1), float(row.score),
                     lm5=np.asarray(row.lm5, np.float32).reshape(5, 2), lm68=lm68)


def sampled_face_similarities(
    video: str | Path, tracks: pd.DataFrame, ref_embs: np.ndarray, backbone: FaceBackbone, proto: dict
) -> tuple[pd.DataFrame, int]:
    """One row (frame, track_id, sim[n_refs]) per detected face in a sampled frame, and the video's frame count."""
    from kling.io.decode import iter_frames

    stride = proto["stride_frames"]
    if len(tracks):
        use = tracks[(tracks["frame"] % stride == 0)]
        if "interpolated" in use.columns:
            use = use[~use["interpolated"].astype(bool)]
        by_frame = {int(f): g for f, g in use.groupby("frame")}
    else:
        by_frame = {}
    out_frames, out_tracks, out_sims = [], [], []
    n_frames = 0
    for chunk in iter_frames(video, fps=proto["fps"]):
        n_frames = chunk.start + len(chunk.frames)
        first = (-chunk.start) % stride
        for k in range(first, len(chunk.frames), stride):
            f = chunk.start + k
            g = by_frame.get(f)
            if g is None or not len(g):
                continue
            dets = [_detection_from_row(r) for r in g.itertuples(index=False)]
            emb = backbone.embed(chunk.frames[k], dets)
            sims = emb @ ref_embs.T
            out_frames.extend([f] * len(dets))
            out_tracks.extend(g["track_id"].astype(int).tolist())
            out_sims.extend(list(sims.astype(np.float64)))
    faces = pd.DataFrame({"frame": np.asarray(out_frames, np.int64), "track_id": np.asarray(out_tracks, np.int64),
                          "sim": out_sims})
    return faces, n_frames


def evaluate_identity(
    video: str | Path,
    references: list[str | Path],
    backbone: str | FaceBackbone = "arcface",
    *,
    weights_path: str | Path | None = None,
    stride_frames: int | None = None,
    window_s: float | None = None,
    detector: str | object = "auto",
    face_tracks: pd.DataFrame | None = None,
    clip_id: str | None = None,
) -> IdentityResult:
    """CSIM of ``video`` against the reference image(s); ``unavailable`` with a reason instead of raising for
    missing weights or faceless references. Bad media raises kling.io.errors.MediaError.

    face_tracks: the face-track table of this video on the 25 fps timeline (computed when None).
    """
    proto = protocol(stride_frames, window_s)
    clip_id = clip_id or Path(video).stem
    refs = [str(r) for r in references]
    if not refs:
        raise ValueError("at least one reference image is required")
    name = backbone if isinstance(backbone, str) else getattr(backbone, "name", "custom")
    try:
        bb = load_backbone(backbone, weights_path) if isinstance(backbone, str) else backbone
    except BackboneUnavailable as exc:
        reason = exc.reason + (f" (fetch with: {exc.fetch_command})" if exc.fetch_command else "")
        return IdentityResult("unavailable", reason, clip_id, _backbone_id(name), None, proto)

    det = _load_detector(detector)
    det_info = det.info() if hasattr(det, "info") else {"name": getattr(det, "name", str(detector))}
    base = dict(clip_id=clip_id, backbone=bb.name, backbone_sha256=bb.sha256, protocol=proto, detector=det_info)
    try:
        ref_embs, refs = reference_embeddings(refs, bb, det)
    except ValueError as exc:
        return IdentityResult("unavailable", str(exc), **base)

    if face_tracks is None:
        face_tracks = shot_aware_tracks(video, det)
    faces, n_frames = sampled_face_similarities(video, face_tracks, ref_embs, bb, proto)
    characters, windows = score_faces(faces, n_frames, refs, proto)
    n_sampled = characters[0].n_sampled if characters else 0
    found = sum(c.n_found for c in characters)
    ffr = found / (n_sampled * len(characters)) if n_sampled else 0.0
    csim = clip_csim(characters)
    status, reason = "ok", None
    if csim is None:
        status, reason = "unavailable", f"no face found in any of {n_sampled} sampled frames"
    return IdentityResult(status, reason, csim=csim, face_found_rate=ffr, n_sampled=n_sampled, windows=windows,
                          characters=characters, **base)


def shot_aware_tracks(video: str | Path, detector) -> pd.DataFrame:
    """Face tracks that never span a scene cut: the IoU tracker would otherwise join two people framed alike
    on either side of a cut into one track, and one track is given to one character."""
    from kling.curate.face_tracks import compute_face_tracks
    from kling.curate.shots import detect_shots

    return compute_face_tracks(video, shots=detect_shots(video), detector=detector).tracks


def _backbone_id(name: str) -> str:
    from eval.identity.backbones import ARCFACE, ARCFACE_WEIGHT_NAME, DLIB

    return {ARCFACE: ARCFACE_WEIGHT_NAME, DLIB: "dlib_resnet_v1"}.get(name, name)


def _load_detector(detector):
    if not isinstance(detector, str):
        return detector
    from kling.curate.detect import load_detector

    return load_detector(detector)
