"""Media IO: probe, streaming constant-rate decode, aligned 16 kHz audio (whole or streamed), atomic mp4/wav writing."""

from kling.io.audio import fit_length, iter_audio, read_audio, samples_for_frames
from kling.io.decode import MAX_FRAME_SIDE, FrameChunk, iter_frames, read_frames
from kling.io.encode import VideoWriter, write_video, write_wav
from kling.io.errors import (
    EmptyMediaError,
    FrameTooLargeError,
    MediaError,
    MissingMediaError,
    NoVideoStreamError,
    TruncatedMediaError,
    UnreadableMediaError,
)
from kling.io.probe import MediaInfo, open_media, probe

__all__ = [
    "MAX_FRAME_SIDE",
    "EmptyMediaError",
    "FrameChunk",
    "FrameTooLargeError",
    "MediaError",
    "MediaInfo",
    "MissingMediaError",
    "NoVideoStreamError",
    "TruncatedMediaError",
    "UnreadableMediaError",
    "VideoWriter",
    "fit_length",
    "iter_audio",
    "iter_frames",
    "open_media",
    "probe",
    "read_audio",
    "read_frames",
    "samples_for_frames",
    "write_video",
    "write_wav",
]
