"""Audio to 16 kHz mono float32, aligned to the video timeline.

Sample 0 of ``read_audio`` is the presentation time of the first decoded video frame (the same origin
as iter_frames' output slot 0): audio that starts later is preceded by zeros, audio that starts earlier
is trimmed. Files without video (wav, m4a, ...) start at their first audio sample.

Lengths are not forced to match the video: ``read_audio`` returns the audio's own length. Callers that
need one sample count per video frame use ``fit_length(samples, samples_for_frames(n_frames))``.
"""

from __future__ import annotations

from pathlib import Path

import av
import av.error
import numpy as np

from kling.io.errors import TruncatedMediaError, UnreadableMediaError
from kling.io.probe import declared_duration_s, ended_early, frame_time, open_media, video_stream


def read_audio(
    path: str | Path,
    sample_rate: int = 16000,
    duration_s: float | None = None,
    *,
    allow_truncated: bool = False,
) -> np.ndarray | None:
    """Mono float32 samples in [-1, 1] at ``sample_rate``, or None when the file has no audio stream.

    Channels are averaged (not FFmpeg's +3 dB downmix, which can exceed 1.0). ``duration_s`` caps the
    result (decoding stops early); it never pads. Raises TruncatedMediaError when the audio stops well
    short of its declared duration (unless ``allow_truncated``), and the open errors of ``open_media``.
    """
    with open_media(path) as container:
        if not container.streams.audio:
            return None
        astream = container.streams.audio[0]
        vstream = video_stream(container)
        limit = None if duration_s is None else max(0, int(round(duration_s * sample_rate)))
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)  # layout kept; mixed below
        parts: list[np.ndarray] = []
        n = 0
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
                n += _collect(resampler.resample(frame), parts)
        n += _collect(resampler.resample(None), parts)

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

        mono = _mono(parts)
        declared = declared_duration_s(container, astream)
        decoded_s = len(mono) / sample_rate
        if limit is None and ended_early(decoded_s, declared) and not allow_truncated:
            raise TruncatedMediaError(
                f"audio stops at {decoded_s:.2f}s of {declared:.2f}s ({'; '.join(errors[:3]) or 'early EOF'})",
                path,
                decoded_s=decoded_s,
                declared_s=declared,
            )

    lead = _lead(audio_t0, video_t0, sample_rate)
    if lead > 0:
        mono = np.concatenate([np.zeros(lead, np.float32), mono])
    elif lead < 0:
        mono = mono[-lead:]
    if limit is not None:
        mono = mono[:limit]
    return np.clip(mono, -1.0, 1.0, out=mono) if mono.size else mono


def fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad or trim ``samples`` (1-D) to exactly ``n`` samples."""
    if n < 0:
        raise ValueError("n must be >= 0")
    samples = np.asarray(samples)
    if len(samples) >= n:
        return samples[:n]
    return np.concatenate([samples, np.zeros(n - len(samples), dtype=samples.dtype)])


def samples_for_frames(n_frames: int, fps: float = 25.0, sample_rate: int = 16000) -> int:
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


def _collect(frames: list[av.AudioFrame], parts: list[np.ndarray]) -> int:
    n = 0
    for frame in frames:
        planes = frame.to_ndarray()  # (channels, samples) for planar float
        parts.append(planes.mean(axis=0, dtype=np.float32) if planes.shape[0] > 1 else planes[0])
        n += planes.shape[1]
    return n


def _mono(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, np.float32)
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
