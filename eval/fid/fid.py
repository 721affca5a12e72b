"""FID between two folders (images, or videos' sampled frames): the plain function the CLI and assets call.

Protocol ``fid-v1`` (recorded in every result and row; the version string names the settings that change
numbers):

- backbone: pytorch-fid's Inception (``pt_inception-2015-12-05-6726825d.pth``), pool3, 2048-d; rows carry
  the sha256 of the exact file used;
- input: RGB uint8 images read as pytorch-fid reads them (PIL, ``convert('RGB')``); resize ``bilinear``
  (pytorch-fid, default) or ``clean`` (clean-fid), see eval.fid.features;
- videos: frames ``0, s, 2s, ...`` of the 25 fps timeline (default s = 5), every video's frames pooled;
- distance: float64 statistics (np.mean, np.cov), Fréchet distance as in eval.fid.frechet;
- at least 2 samples per side, else ``unavailable``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from eval.fid.cache import FeatureCache
from eval.fid.features import RESIZE_MODES, InceptionExtractor, list_images, load_extractor
from eval.fid.frechet import frechet_distance_features
from eval.fid.inception import BACKBONE, WEIGHT_NAME
from eval.fid.result import OK, DistanceResult, unavailable
from eval.fid.sources import FRAME_STRIDE, FIDFrameConsumer, VideoFeatures, image_features
from kling.clock import FPS

log = logging.getLogger(__name__)

PROTOCOL_NAME = "fid-v1"
VIDEO_EXTENSIONS = {"mp4", "mov", "mkv", "avi", "webm", "m4v"}
MIN_SAMPLES = 2


def protocol(resize: str = "bilinear", frame_stride: int = FRAME_STRIDE) -> dict:
    if resize not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {resize!r}; choose one of {RESIZE_MODES}")
    if frame_stride < 1:
        raise ValueError("frame_stride must be >= 1")
    return {
        "name": PROTOCOL_NAME, "backbone": BACKBONE, "layer": "pool3", "dim": 2048, "resize": resize,
        "input": "RGB uint8 / 255 (PIL convert('RGB') for image files)", "video_fps": float(FPS),
        "video_frame_stride": frame_stride, "statistics": "float64 mean, unbiased covariance",
        "min_samples": MIN_SAMPLES, "version": f"{PROTOCOL_NAME}/{resize}/s{frame_stride}",
    }


def list_videos(directory: str | Path) -> list[Path]:
    d = Path(directory)
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS)


def video_features(videos: list[str | Path], extractor: InceptionExtractor, cache: FeatureCache | None = None,
                   frame_stride: int = FRAME_STRIDE) -> tuple[dict[str, VideoFeatures], list[dict]]:
    """Per-video frame features ({path: VideoFeatures}) and the videos skipped with their reason."""
    from kling.io.frames import decode_once
    from kling.io.errors import MediaError

    out: dict[str, VideoFeatures] = {}
    skipped: list[dict] = []
    for v in videos:
        try:
            res = decode_once(v, {"fid": FIDFrameConsumer(v, extractor, cache, frame_stride)})
        except MediaError as exc:
            log.warning("FID: skipping %s: %s", v, exc)
            skipped.append({"path": str(v), "reason": getattr(exc, "reason", "unreadable") + f": {exc}"})
            continue
        out[str(v)] = res["fid"]
    return out, skipped


def folder_features(directory: str | Path, extractor: InceptionExtractor, cache: FeatureCache | None = None,
                    frame_stride: int = FRAME_STRIDE) -> tuple[np.ndarray, list[dict]]:
    """(n, 2048) features of a folder's images, or else of its videos' frame sets; and skipped inputs."""
    d = Path(directory)
    if not d.is_dir():
        raise NotADirectoryError(f"{d} is not a directory")
    images = list_images(d)
    if images:
        return image_features(images, extractor, cache)
    feats, skipped = video_features(list_videos(d), extractor, cache, frame_stride)
    arrays = [f.features for f in feats.values()]
    return (np.concatenate(arrays) if arrays else np.zeros((0, extractor.dim), np.float32)), skipped


def fid_of_features(ref: np.ndarray, gen: np.ndarray, extractor: InceptionExtractor, proto: dict,
                    skipped: list[dict] | None = None, window: str = "all") -> DistanceResult:
    base = dict(backbone=BACKBONE, sha256=extractor.sha256, protocol=proto, n_ref=len(ref), n_gen=len(gen),
                skipped=skipped or [], window=window)
    if len(ref) < MIN_SAMPLES or len(gen) < MIN_SAMPLES:
        return unavailable("fid", f"need at least {MIN_SAMPLES} samples per side (reference {len(ref)}, "
                           f"generated {len(gen)})", **base)
    value = frechet_distance_features(ref, gen)
    return DistanceResult("fid", OK, None, value, len(ref), len(gen), BACKBONE, extractor.sha256, proto,
                          skipped=skipped or [], window=window)


def compute_fid(
    ref_dir: str | Path,
    gen_dir: str | Path,
    weights: str | Path | None = None,
    resize: str = "bilinear",
    frame_stride: int = FRAME_STRIDE,
    cache: FeatureCache | bool = True,
    batch_size: int = 32,
    extractor: InceptionExtractor | None = None,
) -> DistanceResult:
    """FID of ``gen_dir`` against ``ref_dir``; ``unavailable`` (with the reason and fetch command) when the
    weights are missing or too few samples are readable. Features are cached by content unless cache=False."""
    from kling.weights import WeightsUnavailable

    t0 = time.perf_counter()
    proto = protocol(resize, frame_stride)
    if extractor is None:
        try:
            extractor = load_extractor(weights, resize=resize, batch_size=batch_size)
        except WeightsUnavailable as exc:
            return unavailable("fid", f"{exc.reason} (fetch it with: {exc.fetch_command})", BACKBONE, proto,
                               fetch_command=exc.fetch_command)
    elif extractor.resize != resize:
        raise ValueError(f"extractor resize {extractor.resize!r} != requested {resize!r}")
    fc = cache if isinstance(cache, FeatureCache) else FeatureCache(enabled=bool(cache))
    ref, skipped_ref = folder_features(ref_dir, extractor, fc, frame_stride)
    gen, skipped_gen = folder_features(gen_dir, extractor, fc, frame_stride)
    res = fid_of_features(ref, gen, extractor, proto, skipped_ref + skipped_gen)
    res.seconds = time.perf_counter() - t0
    return res


__all__ = ["PROTOCOL_NAME", "WEIGHT_NAME", "compute_fid", "fid_of_features", "folder_features", "protocol",
           "video_features", "list_videos"]
