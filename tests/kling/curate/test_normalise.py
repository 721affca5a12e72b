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


class _Recorder:
    """Stands in for VideoWriter: keeps what write_audio gets."""

    def __init__(self):
        self.calls: list[np.ndarray] = []

    def write_audio(self, samples):
        self.calls.append(np.array(samples, np.float32))


@pytest.mark.parametrize("n_audio, n_video", [(10_000, 6_000), (6_000, 10_000), (8_000, 8_000), (0, 2_500)])
def test_audio_pump_writes_in_step_and_fits_the_track(n_audio, n_video):
    """Audio goes to the writer as the frames do (never past the samples of the frames written), then is
    trimmed or zero-padded to the video's length; the whole track is read so its length is returned."""
    from kling.curate.normalise import _AudioPump

    x = np.random.default_rng(0).uniform(-1, 1, n_audio).astype(np.float32)
    blocks = iter([x[i:i + 1500] for i in range(0, n_audio, 1500)])
    rec = _Recorder()
    pump = _AudioPump(blocks, rec, pad_block=1000)
    for upto in range(640, n_video, 640 * 3):  # after each "chunk" of three frames
        pump.fill(upto)
        assert sum(map(len, rec.calls)) == min(upto, n_audio)
    assert pump.finish(n_video) == n_audio
    written = np.concatenate(rec.calls) if rec.calls else np.zeros(0, np.float32)
    expected = np.concatenate([x, np.zeros(max(0, n_video - n_audio), np.float32)])[:n_video]
    assert written.tobytes() == expected.tobytes()
    assert max(len(c) for c in rec.calls) <= 1500  # blocks and zero padding in pieces, never the whole track


def test_long_clip_interleaves_audio_with_video(tmp_path):
    """Audio written in step with the frames: the mp4 interleaves the streams instead of putting all the audio
    after all the video (which made the muxer queue the video packets), and the audio is the source's."""
    import av

    t = np.arange(int(30 * 16000)) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    src = write_video(tmp_path / "src.mp4", _frames(30 * 25, 32, 32), fps=25, audio=x, sample_rate=16000)
    info = normalise_video(src, tmp_path / "out.mp4", NormaliseConfig(audio_block_s=2.0))
    assert info["frames"] == 750 and abs(info["av_length_mismatch_s"]) < 0.07  # within an aac frame
    with av.open(str(tmp_path / "out.mp4")) as c:
        pos = {"audio": [], "video": []}
        for p in c.demux():
            if p.size:
                pos[p.stream.type].append(p.pos)  # byte offset in the file
    # the first audio bytes come before 10 % of the video's, not after the video the muxer held back (20 s)
    assert min(pos["audio"]) < sorted(pos["video"])[len(pos["video"]) // 10]
    assert np.abs(read_audio(tmp_path / "out.mp4") - read_audio(src)).max() < 0.05
