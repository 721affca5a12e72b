"""Normalising a raw video: constant 25 fps, 16 kHz mono audio aligned to the video, h264 + aac mp4.

Every later step reads the normalised clip, so frame index i always means time i / 25 s and audio sample
j always means time j / 16000 s on the same clock.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from kling.clock import FPS, SAMPLE_RATE
from kling.io.audio import iter_audio
from kling.io.decode import iter_frames
from kling.io.encode import VideoWriter
from kling.io.errors import EmptyMediaError
from kling.io.probe import probe


@dataclasses.dataclass(frozen=True)
class NormaliseConfig:
    fps: int = FPS  # the media clock (kling.clock), not a setting: load_profile rejects other values
    sample_rate: int = SAMPLE_RATE
    max_side: int | None = 1280  # larger frames are downscaled while decoding (4K sources stay cheap)
    crf: int = 18
    preset: str = "veryfast"  # x264 preset: "medium" made normalising ~60% of curation time for ~no gain at crf 18
    chunk_size: int = 32
    audio_block_s: float = 10.0  # audio is handed to the encoder in blocks so memory does not grow with length


def normalise_video(src: str | Path, dst: str | Path, config: NormaliseConfig = NormaliseConfig()) -> dict:
    """Stream `src` into `dst`; return what was found (source fps, durations, audio presence, mismatch).

    Audio longer or shorter than the video is trimmed or zero-padded to the video's length, and the
    mismatch is returned so it is recorded; a source without audio gives a video-only clip. Audio and video
    are both streamed, the audio written in step with the frames (see _AudioPump), so memory does not grow
    with the clip's length.
    """
    info = probe(src)
    audio = None
    if info.has_audio:
        audio = iter_audio(src, sample_rate=config.sample_rate, block_s=config.audio_block_s)
    audio_s = None
    n_frames = 0
    sample_rate = config.sample_rate if audio is not None else None
    with VideoWriter(dst, fps=config.fps, sample_rate=sample_rate, crf=config.crf, preset=config.preset) as writer:
        pump = None if audio is None else _AudioPump(audio, writer, int(config.audio_block_s * config.sample_rate))
        for chunk in iter_frames(src, fps=config.fps, chunk_size=config.chunk_size, max_side=config.max_side):
            writer.write(chunk.frames)
            n_frames += len(chunk.frames)
            if pump is not None:
                pump.fill(_samples(n_frames, config))
            del chunk  # free these frames before the decoder builds the next chunk, not after
        if n_frames == 0:
            raise EmptyMediaError("no video frame decoded", src)
        if pump is not None:
            audio_s = pump.finish(_samples(n_frames, config)) / config.sample_rate  # its own length, before fitting
    video_s = n_frames / config.fps
    return {
        "source_fps": round(float(info.fps or 0.0), 4),
        "source_vfr": bool(info.is_vfr),
        "source_size": f"{info.width}x{info.height}",
        "size": f"{writer.width}x{writer.height}",
        "frames": n_frames,
        "duration_s": round(video_s, 3),
        "has_audio": audio is not None,
        "audio_s": None if audio_s is None else round(audio_s, 3),
        "av_length_mismatch_s": None if audio_s is None else round(audio_s - video_s, 3),
    }


def _samples(n_frames: int, config: NormaliseConfig) -> int:
    return round(n_frames * config.sample_rate / config.fps)


class _AudioPump:
    """Writes the source's aligned audio (iter_audio blocks) up to the time of the frames written so far.

    Audio written only after the last frame made the muxer queue the video packets while it waited for the
    audio stream (about 25 MB more at its peak on a long clip); written in step, the two streams interleave.
    The encoder gets the same samples in the same order, so the aac packets do not change.
    """

    def __init__(self, blocks, writer: VideoWriter, pad_block: int):
        self._blocks, self._writer, self._pad_block = blocks, writer, pad_block
        self._pending = np.zeros(0, np.float32)  # decoded, not written yet
        self.written = 0  # samples written
        self.seen = 0  # samples decoded: the audio's own length once finished
        self._ended = False

    def _pull(self) -> bool:
        block = None if self._ended else next(self._blocks, None)
        if block is None:
            self._ended = True
            return False
        self.seen += len(block)
        self._pending = block
        return True

    def fill(self, upto: int) -> None:
        """Write the audio up to sample ``upto`` (or to its end, when it is shorter)."""
        while self.written < upto:
            if not len(self._pending) and not self._pull():
                return
            take = min(len(self._pending), upto - self.written)
            self._writer.write_audio(self._pending[:take])
            self._pending = self._pending[take:]
            self.written += take

    def finish(self, n_samples: int) -> int:
        """Fit the written audio to ``n_samples`` (zeros after a short track), read the rest of the track (its
        length is recorded; a truncated track raises here), and return the track's length in samples."""
        self.fill(n_samples)
        for i in range(self.written, n_samples, self._pad_block):  # never a whole-track array of zeros
            self._writer.write_audio(np.zeros(min(self._pad_block, n_samples - i), np.float32))
        self.written = max(self.written, n_samples)
        self._pending = np.zeros(0, np.float32)
        while self._pull():
            self._pending = np.zeros(0, np.float32)
        return self.seen
