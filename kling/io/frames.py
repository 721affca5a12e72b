"""Decode a video once and feed every metric that needs its frames in the same pass.

A consumer is any object with ``update(chunk)`` (a kling.io.decode.FrameChunk on the 25 fps protocol
timeline) and ``finish(n_frames)`` returning its result; an optional ``needs_frames`` attribute (False when
it was served from a cache) lets the video go undecoded when no consumer needs it. FID frame features,
FVD clips and the temporal statistics (sharpness, frame change, appearance) are consumers; a sync or
identity consumer plugs in the same way. Memory is what each consumer keeps, never the whole video.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Protocol

from kling.clock import FPS

log = logging.getLogger(__name__)


class FrameConsumer(Protocol):
    """One video's consumer: fed that video's chunks in order, then finished once.

    Merging (a benchmark split across workers): a consumer holds one video's state and is not merged;
    per-video results (sync, identity, adherence, the FID/FVD/statistics consumers' results) are already per
    case, and merging them is putting them back in case order. What pools results over many videos is an
    accumulator with ``merge(other) -> self`` (eval.temporal.suite.DistributionSuite,
    eval.suite.PartialEvaluation), as torchmetrics reduces its states: ``a.merge(b)`` folds b's state into a
    so that the figures equal one accumulator fed every video, bit for bit. Hence sequence state is kept
    per video with a rank (the case's position in the benchmark) and pooled in rank order at compute time,
    never summed on the fly in arrival order; merging parts that share a video or a rank raises.
    """

    def update(self, chunk) -> None: ...

    def finish(self, n_frames: int) -> Any: ...


def decode_once(
    video: str | Path,
    consumers: Mapping[str, FrameConsumer],
    fps: float = FPS,
    chunk_size: int = 64,
    max_side: int | None = None,
) -> dict[str, Any]:
    """Stream ``video`` once through all ``consumers``; returns ``{name: consumer.finish(n_frames)}``.

    Decoding errors (kling.io.errors.MediaError) propagate: the caller records the skip with its reason.
    """
    active = {k: c for k, c in consumers.items() if getattr(c, "needs_frames", True)}
    n_frames = 0
    if active:
        from kling.io.decode import iter_frames

        for chunk in iter_frames(video, fps=fps, chunk_size=chunk_size, max_side=max_side):
            for c in active.values():
                c.update(chunk)
            n_frames = chunk.start + len(chunk.frames)
    else:
        log.debug("%s: every consumer served from cache; not decoded", video)
    return {k: c.finish(n_frames) for k, c in consumers.items()}


class FrameCounter:
    """The smallest consumer: the length of the video on the protocol timeline."""

    def update(self, chunk) -> None:
        pass

    def finish(self, n_frames: int) -> int:
        return n_frames
