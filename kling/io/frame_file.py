"""A long run of frames on disk, read and written a slice at a time: an .npy file (np.load reads it whole)
accessed through plain file reads and writes. Unlike a memory map, whose touched pages stay in the process's
resident set until it is unmapped, memory here is the slice in hand, whatever the video's length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class FrameFile:
    """(n, *frame) uint8 frames in an .npy file; `f[a:b]` reads, `f[a:b] = x` writes, `chunks()` iterates."""

    def __init__(self, path: str | Path, shape: tuple[int, ...] | None = None):
        """With `shape`: create the file (zeros); without: open an existing one."""
        self.path = Path(path)
        fmt = np.lib.format
        if shape is not None:
            with open(self.path, "wb") as fh:
                fmt.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": tuple(int(x) for x in shape)})
                fh.truncate(fh.tell() + int(np.prod(shape)))  # zeros, allocated as they are written
        with open(self.path, "rb") as fh:
            version = fmt.read_magic(fh)
            shape_, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
            self.offset = fh.tell()
        if dtype != np.uint8:
            raise ValueError(f"{self.path}: frames must be uint8, not {dtype}")
        self.shape = tuple(shape_)
        self.frame_bytes = int(np.prod(self.shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def _span(self, key: slice) -> tuple[int, int]:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("FrameFile takes contiguous slices f[a:b]")
        a, b, _ = key.indices(len(self))
        return a, max(a, b)

    def __getitem__(self, key: slice) -> np.ndarray:
        a, b = self._span(key)
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + a * self.frame_bytes)
            data = fh.read((b - a) * self.frame_bytes)
        return np.frombuffer(data, np.uint8).reshape(b - a, *self.shape[1:]).copy()

    def __setitem__(self, key: slice, frames: np.ndarray) -> None:
        a, b = self._span(key)
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.shape != (b - a, *self.shape[1:]):
            raise ValueError(f"{self.path}: {frames.shape} into a slice of {(b - a, *self.shape[1:])}")
        with open(self.path, "r+b") as fh:
            fh.seek(self.offset + a * self.frame_bytes)
            fh.write(frames.tobytes())

    def chunks(self, size: int = 64):
        """Every frame in order, `size` frames read at a time."""
        for a in range(0, len(self), size):
            yield from self[a: a + size]
