"""Streaming video decode to a constant frame rate, by timestamps.

The resampling rule is FFmpeg's ``fps`` filter with ``round=near``: a source frame at time t (relative
to the first decoded frame) owns output slot round(t * fps); output slot i shows the latest source frame
whose slot is <= i, so frames are duplicated across gaps and dropped when several share a slot. The
output ends at the end of the last source frame (its pts + duration). A 29.97 fps or VFR input thus lands
on the frames a viewer saw at each 1/25 s tick, not on frame indices.

Damaged input: packets that fail to decode are skipped (as the ffmpeg CLI does). If the stream then stops
well short of its declared duration, every decodable frame is yielded first and TruncatedMediaError is
raised at the end (``details['frames_decoded']`` says how many output frames were produced), so a
streaming consumer can keep or drop the partial clip but can never mistake it for a whole one. Pass
``allow_truncated=True`` to end quietly instead. A stream with no decodable frame always raises.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from kling.clock import FPS
from kling.io.errors import FrameTooLargeError, NoVideoStreamError, TruncatedMediaError, UnreadableMediaError
from kling.io.probe import declared_duration_s, ended_early, frame_time, open_media, rotation_cw, video_stream

log = logging.getLogger(__name__)

MAX_FRAME_SIDE = 8192  # coded width/height guard: 8K is the largest thing a curation run should see


@dataclass(frozen=True)
class FrameChunk:
    """``frames`` (n, H, W, 3) uint8 RGB; ``start`` index of frames[0] on the constant-rate output
    timeline; ``pts`` (n,) float64 source presentation time in seconds (the source's own clock, not
    shifted to the video start) of the source frame shown in each output frame."""

    frames: np.ndarray
    start: int
    pts: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Display size after an optional downscale so that max(w, h) <= max_side (aspect kept, never upscaled)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _slot(t: Fraction, t0: Fraction, rate: Fraction) -> int:
    # round half up on exact fractions: no float error at the .5 boundaries that 30 -> 25 fps hits.
    return math.floor((t - t0) * rate + Fraction(1, 2))


def _fraction(fps: float | Fraction) -> Fraction:
    rate = Fraction(fps).limit_denominator(1_000_000)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


class _Converter:
    """Source frame -> displayed RGB array of a fixed size (swscale resize, then rotation)."""

    def __init__(self, first: av.VideoFrame, stream, max_side: int | None) -> None:
        self.rotation = rotation_cw(first, stream)
        quarter = self.rotation in (90, 270)
        disp_w, disp_h = (first.height, first.width) if quarter else (first.width, first.height)
        self.width, self.height = output_size(disp_w, disp_h, max_side)
        # swscale works on the stored (unrotated) orientation
        self.coded = (self.height, self.width) if quarter else (self.width, self.height)
        # One reformatter for the whole stream keeps its swscale context: frame.to_ndarray(format=...)
        # builds a new one per frame, which measured ~1.7x slower at 512x512. One swscale thread,
        # since frame-threaded decoding already occupies the cores.
        self._sws = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        w, h = self.coded
        rgb = self._sws.reformat(frame, width=w, height=h, format="rgb24", threads=1).to_ndarray()
        if self.rotation:
            rgb = np.rot90(rgb, k=-self.rotation // 90)  # negative k: clockwise
        return rgb


class _Chunker:
    def __init__(self, chunk_size: int) -> None:
        self.size = chunk_size
        self.frames: list[np.ndarray] = []
        self.pts: list[float] = []
        self.start = 0

    def add(self, rgb: np.ndarray, pts: float) -> FrameChunk | None:
        self.frames.append(rgb)
        self.pts.append(pts)
        return self.flush() if len(self.frames) >= self.size else None

    def flush(self) -> FrameChunk | None:
        if not self.frames:
            return None
        chunk = FrameChunk(np.stack(self.frames), self.start, np.asarray(self.pts, dtype=np.float64))
        self.start += len(self.frames)
        self.frames, self.pts = [], []
        return chunk


def _decoded_frames(container, stream, errors: list[str]) -> Iterator[av.VideoFrame]:
    """Decode ``stream``, skipping packets the decoder rejects; a demux error ends the stream."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:  # container damaged past this point
            errors.append(f"demux: {exc}")
            return
        try:
            frames = packet.decode()  # an empty packet at the end flushes the decoder
        except av.error.FFmpegError as exc:
            errors.append(f"decode: {exc}")
            continue
        yield from frames


def constant_rate(frames: Iterable[av.VideoFrame], rate: Fraction) -> Iterator[tuple[av.VideoFrame, Fraction]]:
    """The fps-filter rule: yield ``(source_frame, source_time)`` once per output slot, in order.

    Slots count from the first frame's time. A frame without a timestamp is taken to follow the
    previous one by the last seen interval; a timestamp that goes backwards cannot reopen past slots.
    """
    t0 = held = held_t = None
    next_slot = held_slot = 0
    interval = 1 / rate
    for frame in frames:
        t = frame_time(frame)
        if t is None:
            t = Fraction(0) if held_t is None else held_t + interval
        if t0 is None:
            t0 = t
        slot = max(_slot(t, t0, rate), held_slot)
        if held is not None:
            if t > held_t:
                interval = t - held_t
            for _ in range(next_slot, slot):
                yield held, held_t
            next_slot = max(next_slot, slot)
        held, held_t, held_slot = frame, t, slot
    if held is None:
        return
    # EOF: the last frame lasts its own duration; like the fps filter, it is dropped when it starts in
    # the slot where the stream ends. A one-frame video still gives one frame.
    duration = held.duration * held.time_base if held.duration and held.time_base else interval
    for _ in range(next_slot, max(_slot(held_t + duration, t0, rate), 1)):
        yield held, held_t


def iter_frames(
    path: str | Path,
    fps: float = FPS,
    chunk_size: int = 64,
    max_side: int | None = None,
    *,
    max_frame_side: int = MAX_FRAME_SIDE,
    allow_truncated: bool = False,
) -> Iterator[FrameChunk]:
    """Stream ``path`` as constant-``fps`` RGB chunks of at most ``chunk_size`` frames.

    Rotation metadata is applied; ``max_side`` downscales while decoding (aspect kept). Raises
    NoVideoStreamError, FrameTooLargeError (coded side > ``max_frame_side``), and the open errors of
    ``open_media``; see the module docstring for truncated files.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    rate = _fraction(fps)
    with open_media(path) as container:
        stream = video_stream(container)
        if stream is None:
            raise NoVideoStreamError("no video stream", path)
        _check_size(stream.codec_context.width, stream.codec_context.height, max_frame_side, path)
        stream.codec_context.thread_type = "AUTO"  # frame + slice threads

        errors: list[str] = []
        chunker = _Chunker(chunk_size)
        convert = shown = rgb = None
        for frame, t in constant_rate(_decoded_frames(container, stream, errors), rate):
            if convert is None:
                _check_size(frame.width, frame.height, max_frame_side, path)
                convert = _Converter(frame, stream, max_side)
            if frame is not shown:  # duplicates reuse the converted array
                shown, rgb = frame, convert(frame)
            chunk = chunker.add(rgb, float(t))
            if chunk is not None:
                yield chunk
        tail = chunker.flush()
        if tail is not None:
            yield tail

        total = chunker.start
        declared = declared_duration_s(container, stream)
        detail = "; ".join(errors[:3]) or "early end of stream"
        if total == 0:
            cls = TruncatedMediaError if errors or declared else UnreadableMediaError
            raise cls(f"no video frame decodes ({detail})", path, frames_decoded=0)
        decoded_s = total / float(rate)  # the output spans exactly what was decoded
        if ended_early(decoded_s, declared) and not allow_truncated:
            raise TruncatedMediaError(
                f"video stops at {decoded_s:.2f}s of {declared:.2f}s ({detail})",
                path,
                frames_decoded=total,
                decoded_s=decoded_s,
                declared_s=declared,
            )
        if errors:
            log.warning("%s: %d damaged packet(s) skipped (%s)", path, len(errors), errors[0])


def read_frames(path: str | Path, fps: float = FPS, max_side: int | None = None, **kwargs) -> np.ndarray:
    """All frames as one (n, H, W, 3) uint8 array; for short clips and tests (memory grows with length)."""
    chunks = [c.frames for c in iter_frames(path, fps=fps, chunk_size=256, max_side=max_side, **kwargs)]
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def _check_size(width: int, height: int, limit: int, path) -> None:
    if width > limit or height > limit:
        raise FrameTooLargeError(f"frame {width}x{height} exceeds the {limit}px guard", path)
