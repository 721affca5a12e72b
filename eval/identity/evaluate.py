"""CSIM of one video against one or more reference faces: the plain function an asset or the CLI calls.

Streams the video once on the protocol timeline, embeds only the faces of sampled frames, and keeps one row of
``n_refs`` cosines per face, so memory stays flat in video length. ``identity_consumer`` is the same work as a
frame consumer (kling.io.frames), for a decode shared with the other metrics. See eval.identity.csim for the protocol.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from eval.identity.backbones import BackboneUnavailable, FaceBackbone, load_backbone
from eval.identity.csim import IdentityResult, clip_csim, protocol, score_faces
from kling.clock import FPS
from kling.perception.faces.detect import load_detector
from kling.perception.faces.tracks import shot_aware_tracks

log = logging.getLogger(__name__)


def load_image_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8; unreadable files raise kling.io.errors.UnreadableMediaError."""
    from kling.io.errors import UnreadableMediaError

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UnreadableMediaError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def reference_embeddings(paths: list[str | Path], backbone: FaceBackbone, detector,
                         report: list | None = None) -> tuple[np.ndarray, list[str]]:
    """(n_refs, dim) embeddings of the largest face in each image; raises ValueError naming a faceless image and
    what was tried there (detector, scales, smallest face size). `report`, a list, receives per image its path,
    the faces found (index, box, width, height, score), the index chosen and what was tried."""
    from kling.perception.faces.multiscale import largest_face_report, search_text

    embs, missing = [], []
    for p in paths:
        img = load_image_rgb(p)
        det, rep = largest_face_report(img, detector)
        if report is not None:
            report.append({"path": str(p), **rep})
        if det is None:
            missing.append(f"{p} (tried {search_text(rep['tried'])})")
            continue
        embs.append(backbone.embed(img, [det])[0])
    if missing:
        raise ValueError(f"no face found in reference image(s): {'; '.join(missing)}")
    return np.stack(embs), [str(p) for p in paths]


def _detection_from_row(row):
    from kling.perception.faces.detection import Detection

    lm68 = row.lm68
    lm68 = None if lm68 is None or len(lm68) != 136 else np.asarray(lm68, np.float32).reshape(68, 2)
    return Detection(float(row.x0), float(row.y0), float(row.x1), float(row.y1), float(row.score),
                     lm5=np.asarray(row.lm5, np.float32).reshape(5, 2), lm68=lm68)


class FaceSimilarityConsumer:
    """Frame consumer (kling.io.frames.decode_once): embeds the tracked faces of every sampled frame as frames
    arrive and keeps one row (frame, track_id, sim[n_refs]) per face; ``finish`` gives that table."""

    def __init__(self, tracks: pd.DataFrame, ref_embs: np.ndarray, backbone: FaceBackbone, proto: dict):
        self.stride, self.ref_embs, self.backbone = proto["stride_frames"], ref_embs, backbone
        self.by_frame = {}
        if len(tracks):
            use = tracks[(tracks["frame"] % self.stride == 0)]
            if "interpolated" in use.columns:
                use = use[~use["interpolated"].astype(bool)]
            self.by_frame = {int(f): g for f, g in use.groupby("frame")}
        self.frames: list[int] = []
        self.tracks: list[int] = []
        self.sims: list[np.ndarray] = []

    def update(self, chunk) -> None:
        first = (-chunk.start) % self.stride
        for k in range(first, len(chunk.frames), self.stride):
            f = chunk.start + k
            g = self.by_frame.get(f)
            if g is None or not len(g):
                continue
            dets = [_detection_from_row(r) for r in g.itertuples(index=False)]
            sims = self.backbone.embed(chunk.frames[k], dets) @ self.ref_embs.T
            self.frames.extend([f] * len(dets))
            self.tracks.extend(g["track_id"].astype(int).tolist())
            self.sims.extend(list(sims.astype(np.float64)))

    def finish(self, n_frames: int) -> pd.DataFrame:
        return pd.DataFrame({"frame": np.asarray(self.frames, np.int64),
                             "track_id": np.asarray(self.tracks, np.int64), "sim": self.sims})


class IdentityConsumer:
    """CSIM of one video as a frame consumer: ``finish`` gives its IdentityResult. Built by identity_consumer,
    which settles the reference faces and the backbone first; a result settled there (missing weights,
    faceless reference) needs no frames."""

    def __init__(self, settled: IdentityResult | None = None, faces: FaceSimilarityConsumer | None = None,
                 refs: list[str] | None = None, proto: dict | None = None, base: dict | None = None):
        self.settled, self.faces, self.refs, self.proto, self.base = settled, faces, refs, proto, base

    @property
    def needs_frames(self) -> bool:
        return self.settled is None

    def update(self, chunk) -> None:
        if self.faces is not None:
            self.faces.update(chunk)

    def finish(self, n_frames: int) -> IdentityResult:
        if self.settled is not None:
            return self.settled
        characters, windows = score_faces(self.faces.finish(n_frames), n_frames, self.refs, self.proto)
        n_sampled = characters[0].n_sampled if characters else 0
        found = sum(c.n_found for c in characters)
        ffr = found / (n_sampled * len(characters)) if n_sampled else 0.0
        csim = clip_csim(characters)
        status, reason = "ok", None
        if csim is None:
            from kling.perception.faces.tracks import FaceTrackConfig, no_track_reason

            code, detail = no_track_reason({"n_frames": n_frames}, FaceTrackConfig())
            reason = (f"too_short: {detail}" if code == "too_short"
                      else f"no face found in any of {n_sampled} sampled frames")
            status = "unavailable"
        return IdentityResult(status, reason, csim=csim, face_found_rate=ffr, n_sampled=n_sampled, windows=windows,
                              characters=characters, **self.base)


def identity_consumer(
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
) -> IdentityConsumer:
    """The frame consumer behind evaluate_identity (same arguments), for a decode shared with other metrics."""
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
        return IdentityConsumer(IdentityResult("unavailable", reason, clip_id, _backbone_id(name), None, proto))

    det = load_detector(detector) if isinstance(detector, str) else detector
    det_info = det.info() if hasattr(det, "info") else {"name": getattr(det, "name", str(detector))}
    base = dict(clip_id=clip_id, backbone=bb.name, backbone_sha256=bb.sha256, protocol=proto, detector=det_info)
    base["detector"] = {**det_info, "references": []}  # per reference: faces found, the one chosen, what was tried
    try:
        ref_embs, refs = reference_embeddings(refs, bb, det, report=base["detector"]["references"])
    except ValueError as exc:
        return IdentityConsumer(IdentityResult("unavailable", str(exc), **base))
    if face_tracks is None:  # the table lip sync and adherence read too
        face_tracks = shot_aware_tracks(video, det)
    return IdentityConsumer(faces=FaceSimilarityConsumer(face_tracks, ref_embs, bb, proto), refs=refs, proto=proto,
                            base=base)


def evaluate_identity(video: str | Path, references: list[str | Path], backbone: str | FaceBackbone = "arcface",
                      **kw) -> IdentityResult:
    """CSIM of ``video`` against the reference image(s); ``unavailable`` with a reason instead of raising for
    missing weights or faceless references. Bad media raises kling.io.errors.MediaError.

    Keywords as identity_consumer: weights_path, stride_frames, window_s, detector, face_tracks (the face-track
    table of this video on the 25 fps timeline; computed when None), clip_id."""
    from kling.io.frames import decode_once

    consumer = identity_consumer(video, references, backbone, **kw)
    return decode_once(video, {"id": consumer}, fps=consumer.proto["fps"] if consumer.proto else FPS)["id"]


def _backbone_id(name: str) -> str:
    from eval.identity.backbones import ARCFACE, ARCFACE_WEIGHT_NAME, DLIB

    return {ARCFACE: ARCFACE_WEIGHT_NAME, DLIB: "dlib_resnet_v1"}.get(name, name)
