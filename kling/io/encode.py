"""Write mp4 (h264 yuv420p + aac) and wav files with PyAV, streaming and atomically.

VideoWriter encodes each frame as it arrives (memory flat in video length) into a hidden temp file next
to the target, and renames it into place on a clean close; on an exception inside ``with`` the temp file
is deleted, so a target path either holds a whole file or nothing new.

Bit-reproducible: libx264's default build picks some routines per CPU and, with them, measured on a Zen 4
(AVX-512), encodes the same frames of a 576x768 demo clip to other bytes on every run; its own
`cpu-independent` switch and a fixed thread count (the bitstream depends on it; the default follows the core
count) give the same bytes on every run and on every CPU (for one libx264 build), for about 7 % more encode
time (benchmarks/bench_encode.py).

Odd frame sizes: yuv420p needs even width and height, so a frame with an odd side is padded by ONE
row/column that repeats the edge pixels (the encoded video is e.g. 65x49 -> 66x50). Nothing is cropped.
"""

from __future__ import annotations

import os
import uuid
import wave
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

from kling.clock import FPS, SAMPLE_RATE

# libx264's own switches for an encode that depends only on its input (see the module docstring).
X264_REPRODUCIBLE = "cpu-independent=1:threads=4"
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


class VideoWriter:
    """Streaming h264 + aac writer.

    ``width``/``height`` may be None: they are then taken from the first frame. ``sample_rate=None``
    writes a video-only file. With a sample rate but no ``write_audio`` call before ``close``, the empty
    audio track is dropped (stream copy, no re-encode) so probes do not report audio that is not there.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = FPS,
        width: int | None = None,
        height: int | None = None,
        sample_rate: int | None = SAMPLE_RATE,
        crf: int = 18,
        *,
        preset: str = "medium",
        audio_bitrate: int = 96_000,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.width, self.height = width, height
        self.sample_rate = sample_rate
        self.crf, self.preset, self.audio_bitrate = crf, preset, audio_bitrate
        self.frames_written = 0
        self.samples_written = 0
        self._tmp = _temp_path(self.path)
        self._container = None
        self._video = self._audio = None
        self._pending_audio: list[np.ndarray] = []  # audio given before the first frame fixes the size
        self._closed = False

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- writing ---------------------------------------------------------------------------------
    def write(self, frames: np.ndarray) -> None:
        """Encode one (H, W, 3) frame or a (n, H, W, 3) batch of uint8 RGB frames."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 (n, H, W, 3) RGB frames, got {frames.dtype} {frames.shape}")
        if self._container is None:
            if self.width is None or self.height is None:
                self.height, self.width = frames.shape[1:3]
            self._open()
        if frames.shape[1:3] != (self.height, self.width):
            raise ValueError(f"frame size {frames.shape[2]}x{frames.shape[1]} != {self.width}x{self.height}")
        pad_h, pad_w = self.height % 2, self.width % 2
        for rgb in frames:
            if pad_h or pad_w:
                rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = self.frames_written
            self._mux(self._video.encode(frame))
            self.frames_written += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Append mono float32 samples (values outside [-1, 1] are clipped). Callable any time before close."""
        if self.sample_rate is None:
            raise ValueError("writer was created with sample_rate=None (video only)")
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 2 and 1 in samples.shape:
            samples = samples.reshape(-1)
        if samples.ndim != 1:
            raise ValueError(f"expected mono 1-D samples, got shape {samples.shape}")
        samples = np.clip(samples, -1.0, 1.0)
        if self._container is None:
            self._pending_audio.append(samples)
            return
        self._encode_audio(samples)

    def close(self) -> Path:
        """Flush encoders, finish the file and move it into place. Returns the final path."""
        if self._closed:
            return self.path
        if self._container is None:
            self.abort()
            raise ValueError(f"no frames written to {self.path}")
        try:
            self._mux(self._video.encode(None))
            if self._audio is not None:
                self._mux(self._audio.encode(None))
            self._container.close()
            self._closed = True
            if self._audio is not None and self.samples_written == 0:
                _drop_audio(self._tmp, *self._format())
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and delete the temp file; the target path is left untouched."""
        if self._container is not None and not self._closed:
            try:
                self._container.close()
            except Exception:  # already failing; the temp file goes away below anyway
                pass
        self._closed = True
        self._tmp.unlink(missing_ok=True)

    # -- internals -------------------------------------------------------------------------------
    def _format(self) -> tuple[str, dict[str, str]]:
        fmt = _FORMATS.get(self.path.suffix.lower(), "mp4")
        # faststart: index at the front, so a partial download still plays (and decodes up to the cut)
        return fmt, ({"movflags": "+faststart"} if fmt in ("mp4", "mov") else {})

    def _open(self) -> None:
        fmt, options = self._format()
        self._container = av.open(str(self._tmp), "w", format=fmt, options=options)
        try:
            video = self._container.add_stream("libx264", rate=self.fps)
            video.width, video.height = self.width + self.width % 2, self.height + self.height % 2
            video.pix_fmt = "yuv420p"
            video.options = {"crf": str(self.crf), "preset": self.preset, "x264-params": X264_REPRODUCIBLE}
            self._video = video
            if self.sample_rate is not None:
                audio = self._container.add_stream("aac", rate=self.sample_rate, layout="mono")
                audio.bit_rate = self.audio_bitrate
                self._audio = audio
        except BaseException:
            self.abort()
            raise
        for samples in self._pending_audio:
            self._encode_audio(samples)
        self._pending_audio = []

    def _encode_audio(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self.samples_written
        frame.time_base = Fraction(1, self.sample_rate)
        self._mux(self._audio.encode(frame))  # PyAV re-frames to the encoder's 1024-sample frames
        self.samples_written += samples.size

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)


def _drop_audio(path: Path, fmt: str, options: dict[str, str]) -> None:
    """Rewrite ``path`` with its video stream only (packet copy)."""
    tmp = _temp_path(path)
    try:
        with av.open(str(path)) as src, av.open(str(tmp), "w", format=fmt, options=options) as dst:
            vin = src.streams.video[0]
            vout = dst.add_stream_from_template(vin)
            for packet in src.demux(vin):
                if packet.dts is None:
                    continue
                packet.stream = vout
                dst.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = FPS,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 18,
    **kwargs,
) -> Path:
    """Encode ``frames`` ((n, H, W, 3) array, or an iterable of (H, W, 3) / (k, H, W, 3) arrays) and
    optional mono ``audio`` to ``path`` atomically. Extra keywords go to VideoWriter (preset, ...)."""
    with VideoWriter(path, fps=fps, sample_rate=None if audio is None else sample_rate, crf=crf, **kwargs) as w:
        if isinstance(frames, np.ndarray):
            w.write(frames)
        else:
            for item in frames:
                w.write(item)
        if audio is not None:
            w.write_audio(audio)
    return w.path


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """16-bit PCM mono wav, written atomically. Samples are float in [-1, 1] (clipped)."""
    path = Path(path)
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    # x * 32768 is the inverse of the decoders' s16 -> float scale, so a wav round trip is exact
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")
    tmp = _temp_path(path)
    try:
        with wave.open(str(tmp), "wb") as fh:
            fh.setnchannels(1)
            fh.setsampwidth(2)
            fh.setframerate(int(sample_rate))
            fh.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
