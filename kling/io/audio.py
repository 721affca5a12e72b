"""Audio to 16 kHz mono float32, aligned to the video timeline.

Sample 0 of ``read_audio`` is the presentation time of the first decoded video frame (the same origin
as iter_frames' output slot 0): audio that starts later is preceded by zeros, audio that starts earlier
is trimmed. Files without video (wav, m4a, ...) start at their first audio sample.

Lengths are not forced to match the video: ``read_audio`` returns the audio's own length. Callers that
need one sample count per video frame use ``fit_length(samples, samples_for_frames(n_frames))``.

``iter_audio`` yields the same samples in fixed-size blocks while decoding, so memory does not grow with
the track's length; ``read_audio`` is the concatenation of its blocks (bit for bit the same samples).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import av
import av.error
import numpy as np

from kling.clock import FPS, SAMPLE_RATE
from kling.io.errors import TruncatedMediaError, UnreadableMediaError
from kling.io.probe import declared_duration_s, ended_early, frame_time, open_media, video_stream

DEFAULT_BLOCK_S = 10.0


def read_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    duration_s: float | None = None,
    *,
    allow_truncated: bool = False,
) -> np.ndarray | None:
    """Mono float32 samples in [-1, 1] at ``sample_rate``, or None when the file has no audio stream.

    Channels are averaged (not FFmpeg's +3 dB downmix, which can exceed 1.0). ``duration_s`` caps the
    result (decoding stops early); it never pads. Raises TruncatedMediaError when the audio stops well
    short of its declared duration (unless ``allow_truncated``), and the open errors of ``open_media``.
    """
    blocks = iter_audio(path, sample_rate, duration_s=duration_s, allow_truncated=allow_truncated)
    if blocks is None:
        return None
    parts = list(blocks)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def iter_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    block_s: float = DEFAULT_BLOCK_S,
    duration_s: float | None = None,
    *,
    allow_truncated: bool = False,
) -> Iterator[np.ndarray] | None:
    """``read_audio``'s samples as float32 blocks of ``round(block_s * sample_rate)`` samples (the last one
    shorter), decoded as they are consumed; None when the file has no audio stream.

    Open errors are raised here; decode errors (TruncatedMediaError, "no audio decodes") when the iterator
    reaches the end of the track, after the blocks before them.
    """
    block = int(round(block_s * sample_rate))
    if block < 1:
        raise ValueError(f"block_s={block_s} gives no whole sample at {sample_rate} Hz")
    with open_media(path) as container:  # open errors and "no audio stream" now, not at the first next()
        if not container.streams.audio:
            return None
    return _aligned_blocks(path, sample_rate, block, duration_s, allow_truncated)


def _aligned_blocks(path, sample_rate: int, block: int, duration_s, allow_truncated: bool) -> Iterator[np.ndarray]:
    limit = None if duration_s is None else max(0, int(round(duration_s * sample_rate)))
    out = _Aligner(block, limit)
    with open_media(path) as container:
        astream = container.streams.audio[0]
        vstream = video_stream(container)
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)  # layout kept; mixed below
        n = 0  # samples decoded (before alignment)
        errors: list[str] = []
        audio_t0 = video_t0 = None
        streams = [astream] if vstream is None else [astream, vstream]
        packets = container.demux(streams)
        # with a cap, stop once the capped span is covered (the first video frame must be seen too)
        while limit is None or n < limit - _lead(audio_t0, video_t0, sample_rate) or (
            vstream is not None and video_t0 is None
        ):
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                errors.append(f"demux: {exc}")
                break
            if packet.stream is vstream:
                # only the first video frame matters: it fixes time 0 of the timeline
                if video_t0 is None:
                    video_t0 = _first_time(packet)
                    if video_t0 is None and packet.size == 0:  # flushed with no frame: use the header
                        video_t0 = _stream_start(vstream)
                    yield from out.start(audio_t0, video_t0, sample_rate)
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                errors.append(f"decode: {exc}")
                continue
            for frame in frames:
                if audio_t0 is None:
                    audio_t0 = frame_time(frame)
                    if audio_t0 is None:
                        audio_t0 = _stream_start(astream)
                    yield from out.start(audio_t0, video_t0 if vstream is not None else audio_t0, sample_rate)
                for mono in _mono_parts(resampler.resample(frame)):
                    n += len(mono)
                    yield from out.push(mono)
        for mono in _mono_parts(resampler.resample(None)):
            n += len(mono)
            yield from out.push(mono)

        if audio_t0 is None:  # nothing decoded
            declared = declared_duration_s(container, astream)
            detail = "; ".join(errors[:3]) or "no audio frame decoded"
            if errors or declared:
                raise TruncatedMediaError(f"no audio decodes ({detail})", path)
            raise UnreadableMediaError(f"no audio decodes ({detail})", path)
        if vstream is None:
            video_t0 = audio_t0
        elif video_t0 is None:
            video_t0 = _stream_start(vstream) or audio_t0
        declared = declared_duration_s(container, astream)
        decoded_s = n / sample_rate
        if limit is None and ended_early(decoded_s, declared) and not allow_truncated:
            raise TruncatedMediaError(
                f"audio stops at {decoded_s:.2f}s of {declared:.2f}s ({'; '.join(errors[:3]) or 'early EOF'})",
                path,
                decoded_s=decoded_s,
                declared_s=declared,
            )
    yield from out.start(audio_t0, video_t0, sample_rate)
    yield from out.finish()


class _Aligner:
    """Puts decoded mono samples on the video timeline as they come: holds them until both start times are
    known, then prepends the lead's zeros (or drops the samples before the first video frame), caps the
    total at ``limit``, clips to [-1, 1] and cuts the result into blocks (a Rebuffer)."""

    def __init__(self, block: int, limit: int | None):
        self._blocks = Rebuffer(block)
        self._limit = limit
        self._held: list[np.ndarray] | None = []  # None once the lead is applied
        self._skip = 0  # samples still to drop (audio that starts before the video)
        self._emitted = 0

    def start(self, audio_t0, video_t0, sample_rate: int) -> Iterator[np.ndarray]:
        """Apply the lead once both times are known (a no-op before that, or after the first time)."""
        if self._held is None or audio_t0 is None or video_t0 is None:
            return
        held, self._held = self._held, None
        lead = _lead(audio_t0, video_t0, sample_rate)
        self._skip = max(0, -lead)
        for i in range(0, max(0, lead), self._blocks.size):  # zeros in block-sized pieces, never all at once
            yield from self._emit(np.zeros(min(self._blocks.size, lead - i), np.float32))
        for part in held:
            yield from self.push(part)

    def push(self, mono: np.ndarray) -> Iterator[np.ndarray]:
        if self._held is not None:
            self._held.append(mono)
            return
        if self._skip:
            drop = min(self._skip, len(mono))
            mono, self._skip = mono[drop:], self._skip - drop
        yield from self._emit(mono)

    def _emit(self, mono: np.ndarray) -> Iterator[np.ndarray]:
        if self._limit is not None:
            mono = mono[: max(0, self._limit - self._emitted)]
        if len(mono) == 0:
            return
        self._emitted += len(mono)
        for blk in self._blocks.push(mono):
            yield np.clip(blk, -1.0, 1.0, out=blk)

    def finish(self) -> Iterator[np.ndarray]:
        for blk in self._blocks.flush():
            yield np.clip(blk, -1.0, 1.0, out=blk)


class Rebuffer:
    """Cuts a stream of 1-D float32 pieces of any sizes into blocks of exactly ``size`` samples (the last one,
    from ``flush``, shorter). Each block is a new array the caller may keep."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._buf = np.empty(size, np.float32)
        self._fill = 0

    def push(self, piece: np.ndarray) -> Iterator[np.ndarray]:
        piece = np.asarray(piece, np.float32).reshape(-1)
        while len(piece):
            take = min(self.size - self._fill, len(piece))
            self._buf[self._fill : self._fill + take] = piece[:take]
            self._fill += take
            piece = piece[take:]
            if self._fill == self.size:
                full, self._buf, self._fill = self._buf, np.empty(self.size, np.float32), 0
                yield full

    def flush(self) -> Iterator[np.ndarray]:
        if self._fill:
            rest = self._buf[: self._fill].copy()  # its own size: a short track does not keep a whole block
            self._fill = 0
            yield rest


def reblock(pieces: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """``pieces`` re-cut into blocks of exactly ``size`` samples (the last one shorter)."""
    buf = Rebuffer(size)
    for piece in pieces:
        yield from buf.push(piece)
    yield from buf.flush()


def fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad or trim ``samples`` (1-D) to exactly ``n`` samples."""
    if n < 0:
        raise ValueError("n must be >= 0")
    samples = np.asarray(samples)
    if len(samples) >= n:
        return samples[:n]
    return np.concatenate([samples, np.zeros(n - len(samples), dtype=samples.dtype)])


def samples_for_frames(n_frames: int, fps: float = FPS, sample_rate: int = SAMPLE_RATE) -> int:
    """Number of audio samples spanning ``n_frames`` video frames (640 per frame at 25 fps / 16 kHz)."""
    return int(round(n_frames * sample_rate / fps))


def _first_time(packet: av.Packet):
    try:
        frames = packet.decode()
    except av.error.FFmpegError:
        return None
    return frame_time(frames[0]) if frames else None


def _stream_start(stream):
    if stream.start_time is None or stream.time_base is None:
        return None
    return stream.start_time * stream.time_base


def _lead(audio_t0, video_t0, sample_rate: int) -> int:
    """Samples of silence to put before the audio (negative: samples to drop)."""
    if audio_t0 is None or video_t0 is None:
        return 0
    return int(round((audio_t0 - video_t0) * sample_rate))


def _mono_parts(frames: list[av.AudioFrame]) -> Iterator[np.ndarray]:
    """Each resampled frame as mono float32 (channels averaged)."""
    for frame in frames:
        planes = frame.to_ndarray()  # (channels, samples) for planar float
        mono = planes.mean(axis=0, dtype=np.float32) if planes.shape[0] > 1 else planes[0]
        yield np.asarray(mono, np.float32)
