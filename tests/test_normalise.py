"""Normalising: constant 25 fps, 16 kHz mono audio fitted to the video's length, the mismatch recorded."""

from __future__ import annotations

import numpy as np
import pytest

from kling.curate.normalise import NormaliseConfig, normalise_video
from kling.io.audio import read_audio
from kling.io.encode import write_video
from kling.io.probe import probe


def _frames(n, h=64, w=80):
    return np.stack([np.full((h, w, 3), (i * 5) % 255, np.uint8) for i in range(n)])


@pytest.mark.parametrize("audio_s", [3.0, 1.0])
def test_audio_longer_or_shorter_than_video_is_fitted_and_recorded(tmp_path, audio_s):
    t = np.arange(int(audio_s * 44100)) / 44100
    src = write_video(tmp_path / "src.mp4", _frames(60), fps=30, audio=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
                      sample_rate=44100)  # 2 s of video at 30 fps
    info = normalise_video(src, tmp_path / "out.mp4", NormaliseConfig())
    assert info["frames"] == 50 and info["duration_s"] == 2.0 and info["has_audio"]
    assert info["av_length_mismatch_s"] == pytest.approx(audio_s - 2.0, abs=0.05)
    out = probe(tmp_path / "out.mp4")
    assert out.fps == pytest.approx(25.0) and out.audio_sample_rate == 16000 and out.audio_channels == 1
    audio = read_audio(tmp_path / "out.mp4")
    assert abs(len(audio) / 16000 - 2.0) < 0.07  # within one aac frame of the video's length


def test_video_without_audio_stays_video_only(tmp_path):
    src = write_video(tmp_path / "src.mp4", _frames(25), fps=25, audio=None)
    info = normalise_video(src, tmp_path / "out.mp4")
    assert not info["has_audio"] and info["audio_s"] is None and read_audio(tmp_path / "out.mp4") is None
