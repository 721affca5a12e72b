"""The cascade's keyframes (stage 3 of kling.generate.cascade): near each split point, the blueprint frame that
best keeps identity (cosine of dlib descriptors to the reference), is sharp (Laplacian variance against the
reference's) and differs from its neighbours (motion); a frame without a face is never chosen.

`config` below is the cascade's configuration (kling.generate.cascade.CascadeConfig): its keyframe_search,
sharpness_weight and motion_weight.
"""

from __future__ import annotations

import cv2
import numpy as np

from kling.models.framing import paste


class KeyframeScorer:
    """Identity (dlib descriptor cosine to the reference), sharpness and motion of candidate frames."""

    def __init__(self, reference_image: np.ndarray, window: np.ndarray, detector):
        from kling.perception.faces.embed import DlibFaceEncoder

        if detector is None:
            from kling.perception.faces.detect import load_detector

            detector = load_detector("auto")
        self.image, self.window, self.detector = reference_image, window, detector
        self.encoder = DlibFaceEncoder()
        self.ref = self.encoder.embed_largest(reference_image, detector)

    @staticmethod
    def sharpness(face: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    def identity(self, face: np.ndarray) -> float | None:
        from kling.perception.faces.embed import cosine_similarity

        desc = self.encoder.embed_largest(paste(self.image, face, self.window), self.detector)
        return None if desc is None or self.ref is None else cosine_similarity(desc, self.ref)

    def score(self, face: np.ndarray, neighbours: list[np.ndarray], reference_face: np.ndarray,
              config) -> dict:
        ident = self.identity(face)
        sharp = np.log((self.sharpness(face) + 1.0) / (self.sharpness(reference_face) + 1.0))
        motion = float(np.mean([np.abs(face.astype(np.float32) - n).mean() / 255.0 for n in neighbours])) if neighbours else 0.0
        total = None if ident is None else ident + config.sharpness_weight * sharp + config.motion_weight * motion
        return {"identity": ident, "sharpness": float(sharp), "motion": motion, "score": total}


def choose_keyframes(blueprint: np.ndarray, stride: int, points: list[int], scorer: KeyframeScorer, first_face: np.ndarray,
                     config, hop: int, n_frames: int) -> list[dict]:
    """Per split point, the best-scoring blueprint frame within `keyframe_search` blueprint frames of it (kept
    a window clear of its neighbours); the split moves to the chosen frame. Frame 0 is the given first frame."""
    chosen = [{"frame": 0, "blueprint_index": 0, "face": first_face, "scores": None, "reason": "the first frame"}]
    for k, p in enumerate(points[1:], start=1):
        lo = chosen[-1]["frame"] + hop
        hi = (points[k + 1] if k + 1 < len(points) else n_frames - 1) - hop
        cands = [p + j * stride for j in range(-config.keyframe_search, config.keyframe_search + 1)]
        cands = [c for c in cands if lo <= c <= hi and c % hop == 0 and c // stride < len(blueprint)] or [p]
        best = None
        for c in cands:
            i = c // stride
            nb = [blueprint[j] for j in (i - 1, i + 1) if 0 <= j < len(blueprint)]
            s = scorer.score(blueprint[i], nb, first_face, config)
            if s["score"] is not None and (best is None or s["score"] > best["scores"]["score"]):
                best = {"frame": c, "blueprint_index": i, "face": blueprint[i], "scores": s, "reason": "best score"}
        if best is None:  # no candidate shows a face: keep the split, say why
            i = p // stride
            best = {"frame": p, "blueprint_index": i, "face": blueprint[i], "scores": None,
                    "reason": "no face in any candidate"}
        chosen.append(best)
    return chosen
