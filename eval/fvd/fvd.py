"""FVD between two folders of videos, as common_metrics_on_video_quality's ``videogpt`` method computes it.

Protocol ``fvd-v1`` (recorded in every result and row):

- frames: the 25 fps timeline of kling.io.decode (RGB uint8);
- clips: ``clip_len`` (16) consecutive frames starting at frames ``0, clip_stride, 2*clip_stride, ...``
  (default stride 16: non-overlapping), at most ``max_clips`` per video (default: all); the trailing frames
  that do not fill a clip are left out. A video of 10..15 frames gives one clip of all its frames (the
  reference accepts clips of >= 10 frames); a shorter one is skipped with reason ``too_short``;
- preprocessing (the reference's ``preprocess_single``): uint8 / 255, shorter side bilinearly resized to 224
  (``align_corners=False``, longer side ``ceil``), centre crop 224x224, then (x - 0.5) * 2 -> [-1, 1];
- features: the I3D's 400 Kinetics logits (time-averaged), one vector per clip, every video's clips pooled;
- distance: float64 Fréchet distance (eval.fid.frechet); the reference computes the same quantity in float32
  with an SVD square root, so it agrees to float32 round-off (see eval/fid/PARITY.md);
- at least 2 clips per side, else ``unavailable``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from eval.fid.cache import FeatureCache, content_sha256
from eval.fid.frechet import frechet_distance_features
from eval.fid.result import OK, DistanceResult, unavailable
from eval.fvd.i3d import BACKBONE, NUM_CLASSES, WEIGHT_NAME, InceptionI3d
from kling.clock import FPS

log = logging.getLogger(__name__)

PROTOCOL_NAME = "fvd-v1"
KIND = "i3d_logits"
RESOLUTION = 224
CLIP_LEN = 16
CLIP_STRIDE = 16
MIN_FRAMES = 10
MIN_CLIPS = 2


def protocol(clip_len: int = CLIP_LEN, clip_stride: int = CLIP_STRIDE, max_clips: int | None = None) -> dict:
    if clip_len < MIN_FRAMES or clip_stride < 1 or (max_clips is not None and max_clips < 1):
        raise ValueError(f"invalid FVD clip settings: len {clip_len} (>= {MIN_FRAMES}), stride {clip_stride}, "
                         f"max {max_clips}")
    mc = "all" if max_clips is None else str(max_clips)
    return {
        "name": PROTOCOL_NAME, "backbone": BACKBONE, "features": "400 Kinetics logits, time-averaged",
        "method": "common_metrics_on_video_quality videogpt", "fps": float(FPS), "clip_len": clip_len,
        "clip_stride": clip_stride, "max_clips_per_video": max_clips, "min_frames": MIN_FRAMES,
        "preprocess": "uint8/255, short side bilinear to 224 (align_corners=False), centre crop, (x-0.5)*2",
        "min_clips": MIN_CLIPS, "version": f"{PROTOCOL_NAME}/l{clip_len}/s{clip_stride}/m{mc}",
    }


def preprocess_frames(frames: np.ndarray, resolution: int = RESOLUTION) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, R, R) float32 in [-1, 1] (the reference's per-video preprocessing)."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    _, _, h, w = video.shape
    scale = resolution / min(h, w)
    size = (resolution, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), resolution)
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
    _, _, h, w = video.shape
    hs, ws = (h - resolution) // 2, (w - resolution) // 2
    video = video[:, :, hs:hs + resolution, ws:ws + resolution].permute(1, 0, 2, 3).contiguous()
    return (video - 0.5) * 2


@dataclass
class I3DExtractor:
    model: InceptionI3d
    sha256: str
    batch_size: int = 4
    device: str = "cpu"
    name: str = BACKBONE
    dim: int = NUM_CLASSES
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model = self.model.to(self.device).eval()

    def __call__(self, clips: torch.Tensor) -> np.ndarray:
        """(N, 3, T, 224, 224) in [-1, 1] -> (N, 400) float32 logits."""
        out = []
        with torch.inference_mode():
            for i in range(0, len(clips), self.batch_size):
                out.append(self.model(clips[i:i + self.batch_size].to(self.device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def load_extractor(weights: str | Path | None = None, batch_size: int = 4, device: str = "cpu") -> I3DExtractor:
    """The FVD backbone through the weights registry; raises kling.weights.WeightsUnavailable."""
    from eval.fid.inception import InceptionWeightsError
    from eval.fvd.i3d import load_i3d
    from kling.weights import WeightsUnavailable, get_weight, resolve, sha256_of

    path = resolve(WEIGHT_NAME, path=weights)
    try:
        model = load_i3d(path)
    except InceptionWeightsError as exc:
        raise WeightsUnavailable(str(exc), get_weight(WEIGHT_NAME).fetch_command) from exc
    return I3DExtractor(model, sha256_of(path), batch_size=batch_size, device=device, meta={"path": str(path)})


@dataclass
class VideoClips:
    """One video's clip features: ``features`` (n_clips, 400), ``index`` (n_clips,) first frame of each clip,
    ``n_frames`` the video's length on the 25 fps timeline; ``reason`` set when it gave no clip."""

    features: np.ndarray
    index: np.ndarray
    n_frames: int
    reason: str | None = None


class FVDClipConsumer:
    """kling.io.frames consumer: I3D logits of the protocol's clips, preprocessed as frames arrive (memory: one
    clip per pending start, never the video), cached per video content and clip protocol."""

    def __init__(self, video: str | Path, extractor: I3DExtractor, cache: FeatureCache | None = None,
                 clip_len: int = CLIP_LEN, clip_stride: int = CLIP_STRIDE, max_clips: int | None = None):
        self.proto = protocol(clip_len, clip_stride, max_clips)
        self.extractor, self.clip_len, self.clip_stride, self.max_clips = extractor, clip_len, clip_stride, max_clips
        self.cache = cache or FeatureCache(enabled=False)
        spec = {"backbone_sha256": extractor.sha256, "protocol": self.proto}
        self.key = self.cache.key(KIND, content_sha256(video), spec)
        self.cached = self.cache.get(KIND, self.key)
        self.needs_frames = self.cached is None
        self._frames: dict[int, torch.Tensor] = {}  # frame index -> (3, 224, 224), only those still needed
        self._head: list[np.ndarray] = []  # the first MIN_FRAMES..clip_len-1 raw frames, for a short video
        self._pending: list[tuple[int, torch.Tensor]] = []
        self._feats: list[np.ndarray] = []
        self._starts: list[int] = []
        self._next = 0  # start frame of the next clip to assemble

    def _done(self) -> bool:
        return self.max_clips is not None and len(self._starts) + len(self._pending) >= self.max_clips

    def update(self, chunk) -> None:
        if self._done():
            return
        if chunk.start < self.clip_len:
            self._head.extend(chunk.frames[: max(0, self.clip_len - chunk.start)])
        # preprocess only the frames a coming clip uses (clip starts are multiples of the stride)
        keep = [chunk.start + k for k in range(len(chunk.frames))
                if chunk.start + k >= self._next and (chunk.start + k) % self.clip_stride < self.clip_len]
        if keep:
            x = preprocess_frames(chunk.frames[np.asarray(keep) - chunk.start])
            for j, i in enumerate(keep):
                self._frames[i] = x[:, j]
        while not self._done() and all(self._next + t in self._frames for t in range(self.clip_len)):
            clip = torch.stack([self._frames[self._next + t] for t in range(self.clip_len)], dim=1)
            self._pending.append((self._next, clip))
            self._next += self.clip_stride
            for i in [i for i in self._frames if i < self._next]:
                del self._frames[i]
        self._flush(whole_batches_only=True)

    def _flush(self, whole_batches_only: bool = False) -> None:
        # batches of exactly batch_size clips: the logits never depend on the decoder's chunking
        bs = self.extractor.batch_size
        n = len(self._pending) // bs * bs if whole_batches_only else len(self._pending)
        for i in range(0, n, bs):
            part = self._pending[i : min(i + bs, n)]
            self._starts.extend(s for s, _ in part)
            self._feats.append(self.extractor(torch.stack([c for _, c in part])))
        self._pending = self._pending[n:]

    def finish(self, n_frames: int) -> VideoClips:
        if self.cached is not None:
            f, i, n = self.cached
            return VideoClips(f, i, n, None if len(f) else f"too_short: fewer than {MIN_FRAMES} frames")
        self._flush()
        self._frames.clear()
        if not self._starts and MIN_FRAMES <= n_frames < self.clip_len:  # the reference's shortest clip
            clip = preprocess_frames(np.stack(self._head[:n_frames]))
            self._feats.append(self.extractor(clip[None]))
            self._starts.append(0)
        feats = np.concatenate(self._feats) if self._feats else np.zeros((0, self.extractor.dim), np.float32)
        index = np.asarray(self._starts, np.int64)
        self._head = []
        self.cache.put(KIND, self.key, feats, index, n_frames)
        reason = None if len(feats) else f"too_short: {n_frames} frames, FVD needs at least {MIN_FRAMES}"
        return VideoClips(feats, index, n_frames, reason)


def video_clip_features(videos: list[str | Path], extractor: I3DExtractor, cache: FeatureCache | None = None,
                        clip_len: int = CLIP_LEN, clip_stride: int = CLIP_STRIDE, max_clips: int | None = None
                        ) -> tuple[dict[str, VideoClips], list[dict]]:
    """Per-video clip features and the videos skipped with their reason (unreadable, too short)."""
    from kling.io.frames import decode_once
    from kling.io.errors import MediaError

    out: dict[str, VideoClips] = {}
    skipped: list[dict] = []
    for v in videos:
        try:
            res = decode_once(v, {"fvd": FVDClipConsumer(v, extractor, cache, clip_len, clip_stride, max_clips)})
        except MediaError as exc:
            log.warning("FVD: skipping %s: %s", v, exc)
            skipped.append({"path": str(v), "reason": f"{getattr(exc, 'reason', 'unreadable')}: {exc}"})
            continue
        clips = res["fvd"]
        if clips.reason:
            skipped.append({"path": str(v), "reason": clips.reason})
        out[str(v)] = clips
    return out, skipped


def fvd_of_features(ref: np.ndarray, gen: np.ndarray, extractor: I3DExtractor, proto: dict,
                    skipped: list[dict] | None = None, window: str = "all") -> DistanceResult:
    if len(ref) < MIN_CLIPS or len(gen) < MIN_CLIPS:
        return unavailable("fvd", f"need at least {MIN_CLIPS} clips per side (reference {len(ref)}, generated "
                           f"{len(gen)})", BACKBONE, proto, sha256=extractor.sha256, n_ref=len(ref),
                           n_gen=len(gen), skipped=skipped or [], window=window)
    return DistanceResult("fvd", OK, None, frechet_distance_features(ref, gen), len(ref), len(gen), BACKBONE,
                          extractor.sha256, proto, skipped=skipped or [], window=window)


def compute_fvd(
    ref_dir: str | Path,
    gen_dir: str | Path,
    weights: str | Path | None = None,
    clip_len: int = CLIP_LEN,
    clip_stride: int = CLIP_STRIDE,
    max_clips: int | None = None,
    cache: FeatureCache | bool = True,
    batch_size: int = 4,
    extractor: I3DExtractor | None = None,
) -> DistanceResult:
    """FVD of the videos in ``gen_dir`` against those in ``ref_dir``; ``unavailable`` with the reason when the
    weights are missing or fewer than 2 clips per side can be formed."""
    from eval.fid.fid import list_videos
    from kling.weights import WeightsUnavailable

    t0 = time.perf_counter()
    proto = protocol(clip_len, clip_stride, max_clips)
    if extractor is None:
        try:
            extractor = load_extractor(weights, batch_size=batch_size)
        except WeightsUnavailable as exc:
            return unavailable("fvd", f"{exc.reason} (fetch it with: {exc.fetch_command})", BACKBONE, proto,
                               fetch_command=exc.fetch_command)
    fc = cache if isinstance(cache, FeatureCache) else FeatureCache(enabled=bool(cache))
    sides = []
    skipped: list[dict] = []
    for d in (ref_dir, gen_dir):
        if not Path(d).is_dir():
            raise NotADirectoryError(f"{d} is not a directory")
        feats, sk = video_clip_features(list_videos(d), extractor, fc, clip_len, clip_stride, max_clips)
        skipped += sk
        arrays = [c.features for c in feats.values() if len(c.features)]
        sides.append(np.concatenate(arrays) if arrays else np.zeros((0, extractor.dim), np.float32))
    res = fvd_of_features(sides[0], sides[1], extractor, proto, skipped)
    res.seconds = time.perf_counter() - t0
    return res
