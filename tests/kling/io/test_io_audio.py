"""kling.io.audio: 16 kHz mono resampling, alignment to the video timeline, helpers."""

from __future__ import annotations

import wave
from fractions import Fraction

import av
import numpy as np
import pytest

from kling.io import TruncatedMediaError, fit_length, read_audio, samples_for_frames, write_video, write_wav
from kling.io.audio import Rebuffer, iter_audio, reblock


def sine(freq, seconds, sr, amp=0.5, phase=0.0):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def peak(samples, sr):
    """(frequency, amplitude) of the strongest sinusoid, Hann-windowed and interpolated."""
    win = np.hanning(len(samples))
    spec = np.abs(np.fft.rfft(samples * win))
    k = int(np.argmax(spec[1:])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2])
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + delta) * sr / len(samples), 2 * spec[k] / win.sum()


def onset(samples, sr, threshold=0.1):
    return int(np.argmax(np.abs(samples) > threshold)) / sr


def write_stereo_wav(path, left, right, sr):
    pcm = (np.stack([left, right], axis=1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(2)
        fh.setsampwidth(2)
        fh.setframerate(sr)
        fh.writeframes(pcm.tobytes())
    return path


def av_file(path, video_start_s, audio_start_s, audio, sr=16000, seconds=2.0):
    """Matroska with h264 video from ``video_start_s`` and pcm audio from ``audio_start_s``."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        aus = c.add_stream("pcm_s16le", rate=sr, layout="mono")
        first = int(round(video_start_s * 25))
        for k in range(int(seconds * 25)):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * k % 256, np.uint8), format="rgb24")
            f.pts = first + k
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        block = 1024  # feed audio in blocks, like a real encoder would receive it
        for i in range(0, len(audio), block):
            af = av.AudioFrame.from_ndarray(audio[None, i : i + block], format="fltp", layout="mono")
            af.sample_rate = sr
            af.pts = int(round(audio_start_s * sr)) + i
            af.time_base = Fraction(1, sr)
            for p in aus.encode(af):
                c.mux(p)
        for p in aus.encode():
            c.mux(p)
    return path


def test_resample_44k_stereo_to_16k_mono(tmp_path):
    sr = 44100
    path = write_stereo_wav(tmp_path / "st.wav", sine(440, 2.0, sr, 0.5), sine(440, 2.0, sr, 0.3), sr)
    out = read_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 32000) <= 2
    freq, amp = peak(out[1000:-1000], 16000)
    assert freq == pytest.approx(440, abs=0.5)
    assert amp == pytest.approx(0.4, abs=0.01)  # channel mean, not a +3 dB downmix
    assert np.abs(out).max() <= 1.0


def test_other_rate_and_duration_cap(tmp_path):
    path = write_wav(tmp_path / "a.wav", sine(1000, 1.0, 16000), 16000)
    out = read_audio(path, sample_rate=8000)
    assert abs(len(out) - 8000) <= 2
    assert peak(out[200:-200], 8000)[0] == pytest.approx(1000, abs=1)
    assert len(read_audio(path, duration_s=0.25)) == 4000


def test_wav_round_trip_exact(tmp_path):
    x = sine(300, 0.5, 16000, 0.8)
    out = read_audio(write_wav(tmp_path / "a.wav", x))
    assert len(out) == len(x)
    np.testing.assert_allclose(out, x, atol=0.5 / 32768 + 1e-7)


def burst(seconds, at_s, sr=16000):
    x = np.zeros(int(seconds * sr), np.float32)
    i = int(at_s * sr)
    x[i : i + sr // 10] = sine(1000, 0.1, sr, 0.5, phase=np.pi / 2)  # starts at full amplitude
    return x


def test_audio_starting_late_is_zero_padded(tmp_path):
    # audio starts 0.5 s after the first video frame; its burst at audio time 0.3 s is at 0.8 s of video
    path = av_file(tmp_path / "late.mkv", 0.0, 0.5, burst(1.5, 0.3))
    out = read_audio(path)
    assert onset(out, 16000) == pytest.approx(0.8, abs=0.002)
    assert not np.any(out[: 8000])  # the leading gap is silence
    assert abs(len(out) - (8000 + 24000)) <= 2


def test_audio_before_video_is_trimmed(tmp_path):
    # video starts at 0.4 s, audio at 0: the burst at 1.0 s of audio is at 0.6 s of the video timeline
    path = av_file(tmp_path / "early.mkv", 0.4, 0.0, burst(2.0, 1.0))
    out = read_audio(path)
    assert onset(out, 16000) == pytest.approx(0.6, abs=0.002)
    assert abs(len(out) - (32000 - 6400)) <= 2


def test_aac_mp4_alignment(tmp_path):
    # through our own writer (aac has 1024 samples of priming that the demuxer must cancel)
    frames = np.zeros((40, 32, 32, 3), np.uint8)
    path = write_video(tmp_path / "v.mp4", frames, audio=burst(1.6, 0.7))
    out = read_audio(path)
    assert onset(out, 16000, threshold=0.25) == pytest.approx(0.7, abs=0.003)


def test_no_audio_returns_none(tmp_path):
    path = write_video(tmp_path / "silent.mp4", np.zeros((5, 32, 32, 3), np.uint8))
    assert read_audio(path) is None


def test_fit_length_and_samples_for_frames():
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(x, 3), [0, 1, 2])
    np.testing.assert_array_equal(fit_length(x, 7), [0, 1, 2, 3, 4, 0, 0])
    assert fit_length(x, 7).dtype == np.float32
    assert samples_for_frames(25) == 16000 and samples_for_frames(1) == 640
    assert samples_for_frames(30, fps=30000 / 1001, sample_rate=16000) == 16016
    with pytest.raises(ValueError):
        fit_length(x, -1)


def _aligned_files(tmp_path):
    """Files that exercise every alignment case: late audio (zeros first), early audio (trimmed), aac with
    priming, 44.1 kHz stereo wav (resampled, channels mixed), 22.05 kHz mono with samples at full scale."""
    return {
        "late": av_file(tmp_path / "late.mkv", 0.0, 0.5, burst(1.5, 0.3)),
        "early": av_file(tmp_path / "early.mkv", 0.4, 0.0, burst(2.0, 1.0)),
        "late_44k": av_file(tmp_path / "late44.mkv", 0.2, 0.33, sine(300, 2.3, 44100), sr=44100, seconds=2.4),
        "aac": write_video(tmp_path / "v.mp4", np.zeros((40, 32, 32, 3), np.uint8), audio=burst(1.6, 0.7)),
        "stereo_44k": write_stereo_wav(tmp_path / "st.wav", sine(440, 2.0, 44100, 0.5), sine(440, 2.0, 44100, 0.3),
                                       44100),
        "loud_22k": write_wav(tmp_path / "loud.wav", sine(440, 1.0, 22050, 1.0), 22050),
    }


@pytest.mark.parametrize("sample_rate", [16000, 8000])
@pytest.mark.parametrize("duration_s", [None, 0.7])
def test_iter_audio_blocks_are_read_audio_bit_for_bit(tmp_path, sample_rate, duration_s):
    """Whatever the block size (16 samples, an odd size, one second, larger than the track), the blocks have
    exactly that size but the last and join into read_audio's samples, bit for bit."""
    for name, path in _aligned_files(tmp_path).items():
        whole = read_audio(path, sample_rate, duration_s)
        assert whole.dtype == np.float32 and len(whole) > 0, name
        for block_s in (0.001, 0.0317, 1.0, 30.0):
            size = int(round(block_s * sample_rate))
            blocks = list(iter_audio(path, sample_rate, block_s, duration_s))
            assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks), name
            assert [len(b) for b in blocks[:-1]] == [size] * (len(blocks) - 1), (name, block_s)
            assert 0 < len(blocks[-1]) <= size, (name, block_s)
            joined = np.concatenate(blocks)
            assert joined.tobytes() == whole.tobytes(), (name, block_s)


def test_iter_audio_alignment_holds_across_block_edges(tmp_path):
    """The lead of zeros and the trim are applied to the stream, not to the first block: with blocks shorter
    than the lead the burst still lands at its video time."""
    files = _aligned_files(tmp_path)
    late = np.concatenate(list(iter_audio(files["late"], block_s=0.01)))  # 160-sample blocks, 8000 zeros first
    assert not np.any(late[:8000]) and onset(late, 16000) == pytest.approx(0.8, abs=0.002)
    early = np.concatenate(list(iter_audio(files["early"], block_s=0.01)))
    assert onset(early, 16000) == pytest.approx(0.6, abs=0.002)
    loud = np.concatenate(list(iter_audio(files["loud_22k"], block_s=0.01)))
    assert np.abs(loud).max() <= 1.0  # clipped per block like the whole track


def test_iter_audio_is_lazy_and_none_without_audio(tmp_path):
    path = write_video(tmp_path / "mute.mp4", np.zeros((5, 32, 32, 3), np.uint8))
    assert iter_audio(path) is None
    long_wav = write_wav(tmp_path / "long.wav", sine(200, 4.0, 16000), 16000)
    blocks = iter_audio(long_wav, block_s=0.5)
    first = next(blocks)
    assert len(first) == 8000
    np.testing.assert_array_equal(first, read_audio(long_wav)[:8000])
    blocks.close()  # stopping early closes the file; nothing else is decoded


def test_iter_audio_reports_truncation_after_its_blocks(tmp_path):
    full = write_video(tmp_path / "full.mkv", np.zeros((50, 32, 32, 3), np.uint8), audio=sine(300, 2.0, 16000))
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(TruncatedMediaError):
        for block in iter_audio(cut, block_s=0.1):
            got.append(block)
    assert got and sum(map(len, got)) < 32000
    np.testing.assert_array_equal(np.concatenate(got), read_audio(cut, allow_truncated=True)[: sum(map(len, got))])


def test_rebuffer_and_reblock():
    pieces = [np.arange(n, dtype=np.float32) + 100 * n for n in (0, 3, 7, 1, 12, 5)]
    flat = np.concatenate(pieces)
    for size in (1, 4, 28, 100):
        blocks = list(reblock(pieces, size))
        assert [len(b) for b in blocks[:-1]] == [size] * (len(blocks) - 1) and 0 < len(blocks[-1]) <= size
        np.testing.assert_array_equal(np.concatenate(blocks), flat)
    buf = Rebuffer(4)
    kept = list(buf.push(np.ones(8, np.float32)))
    kept[0][:] = 5  # blocks are the caller's: later pushes must not overwrite them
    list(buf.push(np.zeros(4, np.float32)))
    assert kept[0].tolist() == [5] * 4 and kept[1].tolist() == [1] * 4
    assert list(reblock([], 3)) == []
    with pytest.raises(ValueError):
        Rebuffer(0)
