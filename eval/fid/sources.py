"""Where FID features come from: image files, or sampled frames of videos (through the shared decode).

Frame set of a video (FID protocol): frames ``0, stride, 2*stride, ...`` of the 25 fps timeline
(default stride 5: 5 frames per second). Each image file and each (video file, frame set) is one cache entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.fid.cache import FeatureCache, content_sha256
from eval.fid.features import InceptionExtractor, read_image
from kling.clock import FPS

KIND = "inception_pool3"
FRAME_STRIDE = 5


@dataclass
class VideoFeatures:
    """Features of one video's frame set: ``features`` (n, d), ``index`` (n,) frame indices on the 25 fps
    timeline, ``n_frames`` the video's length on it."""

    features: np.ndarray
    index: np.ndarray
    n_frames: int

    def in_range(self, start: int, end: int) -> np.ndarray:
        return self.features[(self.index >= start) & (self.index < end)]


def _spec(extractor: InceptionExtractor, frames: dict) -> dict:
    return {"backbone_sha256": extractor.sha256, "protocol": extractor.protocol, "frames": frames}


def image_features(paths: list[str | Path], extractor: InceptionExtractor, cache: FeatureCache | None = None
                   ) -> tuple[np.ndarray, list[dict]]:
    """(n, 2048) features of the readable image files (cached per file content), and the unreadable ones
    skipped with their reason."""
    from kling.io.errors import MediaError

    cache = cache or FeatureCache(enabled=False)
    spec = _spec(extractor, {"image": True})
    feats: dict[int, np.ndarray] = {}
    skipped: list[dict] = []
    todo_keys: list[tuple[int, str]] = []
    todo_imgs: list[np.ndarray] = []

    def flush() -> None:  # bounded memory: images are decoded and embedded a batch at a time
        for (i, key), f in zip(todo_keys, extractor.many(todo_imgs)):
            cache.put(KIND, key, f[None], np.zeros(1, np.int64))
            feats[i] = f
        todo_keys.clear()
        todo_imgs.clear()

    for i, p in enumerate(paths):
        key = cache.key(KIND, content_sha256(p), spec)
        hit = cache.get(KIND, key)
        if hit is not None:
            feats[i] = hit[0][0]
            continue
        try:
            todo_imgs.append(read_image(p))
        except MediaError as exc:  # one bad file is skipped with its reason, not fatal to the set
            skipped.append({"path": str(p), "reason": f"{exc.reason}: {exc}"})
            continue
        todo_keys.append((i, key))
        if len(todo_imgs) >= extractor.batch_size:
            flush()
    flush()
    order = sorted(feats)
    out = np.stack([feats[i] for i in order]) if order else np.zeros((0, extractor.dim), np.float32)
    return out, skipped


class FIDFrameConsumer:
    """kling.io.frames consumer: Inception features of every ``stride``-th frame, batched, cached per video."""

    def __init__(self, video: str | Path, extractor: InceptionExtractor, cache: FeatureCache | None = None,
                 stride: int = FRAME_STRIDE):
        if stride < 1:
            raise ValueError("stride must be >= 1")
        self.extractor, self.stride = extractor, stride
        self.cache = cache or FeatureCache(enabled=False)
        self.key = self.cache.key(KIND, content_sha256(video), _spec(extractor, {"fps": float(FPS), "stride": stride}))
        self.cached = self.cache.get(KIND, self.key)
        self.needs_frames = self.cached is None
        self._buf: list[np.ndarray] = []
        self._idx: list[int] = []
        self._feats: list[np.ndarray] = []

    def update(self, chunk) -> None:
        first = (-chunk.start) % self.stride
        for k in range(first, len(chunk.frames), self.stride):
            self._buf.append(chunk.frames[k])
            self._idx.append(chunk.start + k)
        self._flush(whole_batches_only=True)

    def _flush(self, whole_batches_only: bool = False) -> None:
        # batches of exactly batch_size frames: the features never depend on the decoder's chunking
        bs = self.extractor.batch_size
        n = len(self._buf) // bs * bs if whole_batches_only else len(self._buf)
        for i in range(0, n, bs):
            self._feats.append(self.extractor(np.stack(self._buf[i : min(i + bs, n)])))
        self._buf = self._buf[n:]

    def finish(self, n_frames: int) -> VideoFeatures:
        if self.cached is not None:
            return VideoFeatures(*self.cached)
        self._flush()
        feats = np.concatenate(self._feats) if self._feats else np.zeros((0, self.extractor.dim), np.float32)
        index = np.asarray(self._idx, np.int64)
        self.cache.put(KIND, self.key, feats, index, n_frames)
        return VideoFeatures(feats, index, n_frames)
