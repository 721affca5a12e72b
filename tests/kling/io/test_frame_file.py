"""Frames on disk read and written a slice at a time, as np.load reads the whole file."""

import numpy as np
import pytest

from kling.io.frame_file import FrameFile


def test_slices_round_trip_and_the_file_is_a_plain_npy(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (10, 4, 5, 3)).astype(np.uint8)
    f = FrameFile(tmp_path / "f.npy", frames.shape)
    assert len(f) == 10 and not f[0:10].any()  # created as zeros
    f[0:3], f[3:10] = frames[:3], frames[3:]
    assert np.array_equal(np.load(tmp_path / "f.npy"), frames)
    again = FrameFile(tmp_path / "f.npy")
    assert again.shape == frames.shape and np.array_equal(again[2:5], frames[2:5]) and again[8:20].shape == (2, 4, 5, 3)
    assert np.array_equal(np.stack(list(again.chunks(3))), frames)
    with pytest.raises(ValueError):
        f[0:2] = frames[:3]
    with pytest.raises(TypeError):
        f[::2]
    np.save(tmp_path / "floats.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        FrameFile(tmp_path / "floats.npy")
