"""Face detectors behind one small interface.

A detector takes a batch of RGB frames (n, H, W, 3) uint8 and returns, per frame, a list of
`Detection`s in full-frame pixels with insightface-ordered 5 points. Two back ends:

- "dlib": HOG frontal detector on a downscaled grey copy, 68-point landmarks at full resolution.
  Offline, shipped by face_recognition_models; the default when no SCRFD weights are present.
- "scrfd": insightface SCRFD-10G (buffalo_l det_10g.onnx) via onnxruntime (kling/perception/faces/scrfd.py).

`load_detector` is the one chooser ("auto": scrfd when its weights resolve, else dlib) and cache.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from kling.perception.faces.detection import FaceDetector
from kling.perception.faces.dlib_detector import DlibDetector
from kling.weights import WeightsUnavailable

log = logging.getLogger(__name__)


def load_detector(name: str = "auto", weights_dir: str | Path | None = None, **params) -> FaceDetector:
    """The face detector to run: the one place that decides "SCRFD if its weights exist, else dlib".

    name: "scrfd", "dlib" or "auto" (scrfd when det_10g.onnx resolves, else dlib HOG). weights_dir: a folder
    holding det_10g.onnx, or the file (overrides the weights registry). params: the detectors' constructor
    arguments (dlib: detect_side, upsample, min_score, landmarks, threads; scrfd: input_size, det_thresh,
    nms_thresh, landmarks, threads); each detector takes its own and ignores the other's, so one call serves
    "auto" whichever it picks. "scrfd" without weights raises kling.weights.WeightsUnavailable.

    The detector comes wrapped in kling.perception.faces.multiscale.MultiScaleDetector (same outputs; finds
    faces from ~40 px in large frames). Detectors are cached per (detector, weights file, parameters): loading costs ~1 s and a curation or
    evaluation run asks once per clip. The weights are resolved on every call and a file's size and mtime are
    part of the key, so weights fetched (or replaced) later are used from the next call on.
    """
    if name not in ("auto", "dlib", "scrfd"):
        raise ValueError(f"unknown face detector {name!r} (dlib, scrfd, auto)")
    unknown = set(params) - _DLIB_DEFAULTS.keys() - _SCRFD_DEFAULTS.keys()
    if unknown:
        raise TypeError(f"unknown face detector parameter(s): {', '.join(sorted(unknown))}")
    path = None
    if name != "dlib":
        from kling.perception.faces.scrfd import resolve_scrfd_weights

        try:
            path = resolve_scrfd_weights(weights_dir)
        except WeightsUnavailable as exc:
            if name == "scrfd":
                raise
            log.info("face detector: SCRFD unavailable (%s); using dlib HOG", exc.reason)
    if path is None:
        return _cached("dlib", None, None, _settings(_DLIB_DEFAULTS, params))
    stat = Path(path).stat()
    return _cached("scrfd", str(path), (stat.st_size, stat.st_mtime_ns), _settings(_SCRFD_DEFAULTS, params))


# Every parameter with its default: equal settings give one cache entry however they were spelt.
_DLIB_DEFAULTS = {"detect_side": 320, "upsample": 0, "min_score": 0.0, "landmarks": True, "threads": None}
_SCRFD_DEFAULTS = {"input_size": (640, 640), "det_thresh": 0.5, "nms_thresh": 0.4, "landmarks": True,
                   "threads": None}


def _settings(defaults: dict, params: dict) -> tuple:
    out = dict(defaults)
    out.update({k: v for k, v in params.items() if k in defaults})
    if "input_size" in out:  # an int means a square input
        size = out["input_size"]
        out["input_size"] = (int(size), int(size)) if np.isscalar(size) else tuple(int(v) for v in size)
    return tuple(sorted(out.items()))


@lru_cache(maxsize=8)
def _cached(kind: str, path: str | None, stamp: tuple | None, settings: tuple) -> FaceDetector:
    from kling.perception.faces.multiscale import MultiScaleDetector

    if kind == "dlib":
        det = DlibDetector(**dict(settings))
    else:
        from kling.perception.faces.scrfd import ScrfdDetector

        det = ScrfdDetector(path, **dict(settings))
    # faces from ~40 px in frames of any size (half-body, full-body, 4K): the detector as it is first, finer
    # tiled passes only on frames where it finds nothing (kling/perception/faces/multiscale.py)
    return MultiScaleDetector(det)
