"""Open media files safely and describe them (probe).

``open_media`` is the one place that turns "cannot open" into a MediaError subclass, so decode.py and
audio.py report missing / empty / corrupt / truncated files the same way. ``probe`` reads the header,
the first ~100 video packets (timestamps, for VFR detection) and the first decoded frame (rotation).
"""

from __future__ import annotations

import os
import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import av.error
from av.stream import Disposition

from kling.io.errors import (
    EmptyMediaError,
    MissingMediaError,
    TruncatedMediaError,
    UnreadableMediaError,
)

# Demuxers that "open" almost anything (a text file opens as tty) and never hold real video.
_JUNK_FORMATS = {"tty"}
_VFR_PACKETS = 100
_REORDER = 16  # deeper than any B-frame pyramid in practice


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds. Video fields are 0 / None when there is no video stream.

    ``width``/``height`` are the displayed size (rotation applied, as iter_frames returns frames);
    ``rotation`` is the clockwise angle in degrees (0, 90, 180, 270) applied for display.
    ``n_frames`` is the container's count, or duration * fps when the container has none.
    """

    path: str
    size_bytes: int
    container: str
    duration_s: float
    fps: float
    n_frames: int
    width: int
    height: int
    rotation: int
    video_codec: str | None
    has_audio: bool
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    audio_duration_s: float | None
    is_vfr: bool
    streams: tuple[str, ...] = ()  # stream types in file order, e.g. ("video", "audio")


@contextmanager
def open_media(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading, mapping every failure to a MediaError subclass."""
    p = Path(path)
    if not p.exists():
        raise MissingMediaError("file does not exist", p)
    if not p.is_file():
        raise UnreadableMediaError("not a regular file", p)
    if p.stat().st_size == 0:
        raise EmptyMediaError("zero-length file", p)
    try:
        container = av.open(str(p), metadata_errors="replace")
    except av.error.FFmpegError as exc:
        if looks_truncated(p):
            raise TruncatedMediaError("container index missing (file cut short)", p) from exc
        raise UnreadableMediaError(f"cannot open container ({exc.strerror or exc})", p) from exc
    try:
        if container.format.name in _JUNK_FORMATS or not (
            container.streams.video or container.streams.audio
        ):
            raise UnreadableMediaError("no audio or video stream found", p)
        yield container
    finally:
        container.close()


def looks_truncated(path: Path) -> bool:
    """True for an ISO-BMFF (mp4/mov) file whose top-level boxes run past EOF or lack ``moov``.

    Only called after the demuxer refused the file: it separates "cut short" (a partial download,
    an interrupted copy) from bytes that were never media.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[4:8] not in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
            return False
        pos, seen_moov = 0, False
        while pos + 8 <= size:
            fh.seek(pos)
            box_size, box_type = struct.unpack(">I4s", fh.read(8))
            if box_size == 1:  # 64-bit size follows
                ext = fh.read(8)
                if len(ext) < 8:
                    return True
                box_size = struct.unpack(">Q", ext)[0]
            elif box_size == 0:  # box extends to EOF
                box_size = size - pos
            if box_size < 8 or pos + box_size > size:
                return True
            seen_moov |= box_type == b"moov"
            pos += box_size
        return not seen_moov


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """First real video stream (cover art in music files does not count as video)."""
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:
            return stream
    return None


def rotation_cw(frame: av.VideoFrame | None, stream: av.video.stream.VideoStream) -> int:
    """Clockwise display rotation in {0, 90, 180, 270}.

    The display matrix on the decoded frame wins (PyAV reports it counter-clockwise); the legacy
    ``rotate`` tag (already clockwise) is the fallback for files FFmpeg did not convert.
    """
    degrees = 0.0
    if frame is not None and frame.rotation:
        degrees = -float(frame.rotation)
    else:
        tag = stream.metadata.get("rotate") or stream.metadata.get("ROTATE")  # matroska upper-cases tags
        if tag and re.fullmatch(r"-?\d+(\.\d+)?", tag.strip()):
            degrees = float(tag)
    return int(round(degrees / 90.0)) % 4 * 90


def declared_duration_s(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Duration the file claims for ``stream``: its own duration, its DURATION tag (matroska), or,
    when the file has a single stream, the container's duration."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")
    if tag:
        m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip())
        if m:
            return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    if container.duration and len(container.streams) == 1:
        return container.duration / 1_000_000
    return None


def ended_early(decoded_s: float, declared_s: float | None) -> bool:
    """True when a stream stopped well short of its declared length (0.5 s or 5 %, the larger)."""
    if declared_s is None or declared_s <= 0:
        return False
    return decoded_s < declared_s - max(0.5, 0.05 * declared_s)


def frame_time(frame: av.frame.Frame) -> Fraction | None:
    """Exact presentation time in seconds, or None when the frame has no timestamp."""
    if frame.pts is None or frame.time_base is None:
        return None
    return frame.pts * frame.time_base


def _is_vfr(pts: list[int], stream: av.video.stream.VideoStream, complete: bool) -> bool:
    # Timestamps first: any gap off the median by half a frame means the rate is not constant.
    ordered = sorted(set(pts))
    if not complete and len(ordered) > 2 * _REORDER:
        # B-frame reordering: frames presented just before the window's last packets may still be
        # unread, which would look like a gap. Keep what precedes every one of the last packets.
        cutoff = min(pts[-_REORDER:])
        ordered = [p for p in ordered if p <= cutoff]
    if len(ordered) >= 3:
        deltas = [b - a for a, b in zip(ordered, ordered[1:])]
        median = sorted(deltas)[len(deltas) // 2]
        if any(abs(d - median) > 0.5 * median for d in deltas):
            return True
    avg, guessed = stream.average_rate, stream.guessed_rate
    if avg and guessed:
        return abs(float(avg) / float(guessed) - 1.0) > 0.05
    return False


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file. Raises a MediaError subclass for missing / empty / corrupt files."""
    p = Path(path)
    with open_media(p) as c:
        duration = c.duration / 1_000_000 if c.duration else 0.0
        vs = video_stream(c)
        fps, n_frames, width, height, rotation, vcodec, vfr = 0.0, 0, 0, 0, 0, None, False
        if vs is not None:
            pts, first, complete = [], None, True
            try:
                for i, packet in enumerate(c.demux(vs)):
                    if packet.pts is not None:
                        pts.append(packet.pts)
                    if first is None:
                        frames = packet.decode()
                        first = frames[0] if frames else None
                    if i + 1 >= _VFR_PACKETS and first is not None:
                        complete = False
                        break
            except av.error.FFmpegError:
                pass  # a damaged stream still has a header worth reporting; decode reports the damage
            rate = vs.average_rate or vs.guessed_rate
            fps = float(rate) if rate else 0.0
            vdur = declared_duration_s(c, vs) or duration
            n_frames = vs.frames or int(round(vdur * fps))
            width, height = vs.codec_context.width, vs.codec_context.height
            rotation = rotation_cw(first, vs)
            if rotation in (90, 270):
                width, height = height, width
            vcodec = vs.codec_context.name
            vfr = _is_vfr(pts, vs, complete)
        aus = c.streams.audio[0] if c.streams.audio else None
        adur = None
        if aus is not None:
            adur = declared_duration_s(c, aus)
            if adur is None and vs is None and duration:
                adur = duration
        if not duration:
            duration = max(
                (d for d in (declared_duration_s(c, s) for s in c.streams) if d is not None), default=0.0
            )
        return MediaInfo(
            path=str(p),
            size_bytes=os.path.getsize(p),
            container=c.format.name,
            duration_s=float(duration),
            fps=fps,
            n_frames=int(n_frames),
            width=int(width),
            height=int(height),
            rotation=rotation,
            video_codec=vcodec,
            has_audio=aus is not None,
            audio_codec=aus.codec_context.name if aus is not None else None,
            audio_sample_rate=aus.codec_context.sample_rate if aus is not None else None,
            audio_channels=aus.codec_context.channels if aus is not None else None,
            audio_duration_s=adur,
            is_vfr=vfr,
            streams=tuple(s.type for s in c.streams),
        )
