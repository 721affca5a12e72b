"""Errors raised by kling.io for bad media.

Every error is a MediaError with a short snake_case ``reason`` code, so a curation step can record
``(path, reason, message)`` for a skipped file without parsing messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class MediaError(Exception):
    """A media file that cannot be used as asked. ``reason`` is a stable snake_case code."""

    reason = "media_error"

    def __init__(self, message: str, path: str | Path | None = None, **details: Any) -> None:
        super().__init__(f"{message}: {path}" if path is not None else message)
        self.message = message
        self.path = None if path is None else str(path)
        # Extra facts (e.g. frames_decoded for a truncated file) for logs and skip records.
        self.details = details


class MissingMediaError(MediaError, FileNotFoundError):
    """The path does not exist (also a FileNotFoundError, for callers that catch that)."""

    reason = "missing"


class UnreadableMediaError(MediaError):
    """No demuxer can open the bytes, or no frame/sample decodes and the file does not look cut."""

    reason = "unreadable"


class TruncatedMediaError(MediaError):
    """The file was cut short: container index missing, or the stream ends well before its declared
    duration. ``details`` holds ``frames_decoded`` / ``decoded_s`` / ``declared_s`` when known."""

    reason = "truncated"


class EmptyMediaError(MediaError):
    """Zero-length file."""

    reason = "empty"


class NoVideoStreamError(MediaError):
    """Video was requested from a file without a (non cover-art) video stream."""

    reason = "no_video"


class FrameTooLargeError(MediaError):
    """Coded frame size above the configured guard (default 8192x8192)."""

    reason = "frame_too_large"


__all__ = [
    "MediaError",
    "MissingMediaError",
    "UnreadableMediaError",
    "TruncatedMediaError",
    "EmptyMediaError",
    "NoVideoStreamError",
    "FrameTooLargeError",
]
