"""kling.io.encode: h264 + aac round trip, odd sizes, streaming writer, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from kling.io import VideoWriter, probe, read_audio, read_frames, write_video, write_wav

W, H = 64, 48


def coded(n):
    """Frame k is a flat grey level 10 + 6k: easy to read back through a lossy codec."""
    return np.stack([np.full((H, W, 3), 10 + 6 * k, np.uint8) for k in range(n)])


def tone(seconds, sr=16000, freq=440.0):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_round_trip_h264_aac(tmp_path):
    audio = tone(1.2)
    path = write_video(tmp_path / "clip.mp4", coded(30), audio=audio)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temp file left
    info = probe(path)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.n_frames, info.fps) == (W, H, 30, 25.0)
    assert info.audio_sample_rate == 16000 and info.audio_channels == 1
    frames = read_frames(path)
    assert frames.shape == (30, H, W, 3)
    np.testing.assert_allclose(frames.reshape(30, -1).mean(1), 10 + 6 * np.arange(30), atol=1.5)
    back = read_audio(path)
    assert abs(len(back) - len(audio)) <= 1024  # one aac frame
    n = min(len(back), len(audio)) - 2000
    corr = np.corrcoef(back[1000:n], audio[1000:n])[0, 1]
    assert corr > 0.99


def test_odd_size_is_edge_padded(tmp_path):
    img = np.zeros((33, 47, 3), np.uint8)
    img[:, -1] = 200  # last column bright: the pad column must repeat it
    img[-1, :] = 100
    path = write_video(tmp_path / "odd.mp4", np.stack([img] * 3), crf=0)
    out = read_frames(path)
    assert out.shape == (3, 34, 48, 3)
    assert abs(int(out[0, 10, 47, 0]) - 200) <= 6 and abs(int(out[0, 33, 10, 0]) - 100) <= 6


def test_streaming_writer_audio_any_time(tmp_path):
    path = tmp_path / "s.mp4"
    with VideoWriter(path, fps=25, width=W, height=H, sample_rate=16000) as w:
        w.write_audio(tone(0.4))  # before the first frame
        for k in range(20):
            w.write(coded(20)[k])  # single (H, W, 3) frames
        w.write_audio(tone(0.4))  # and after the last one
    assert w.frames_written == 20 and w.samples_written == 12800
    assert abs(len(read_audio(path)) - 12800) <= 1024
    assert len(read_frames(path)) == 20


def test_sample_rate_without_audio_gives_video_only(tmp_path):
    with VideoWriter(tmp_path / "v.mp4", width=W, height=H) as w:
        w.write(coded(5))
    info = probe(tmp_path / "v.mp4")
    assert not info.has_audio and info.streams == ("video",) and info.n_frames == 5


def test_exception_inside_with_leaves_nothing(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path, width=W, height=H) as w:
            w.write(coded(5))
            raise RuntimeError("caller failed mid-video")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path):
    path = write_video(tmp_path / "x.mp4", coded(4))
    before = path.read_bytes()
    with pytest.raises(ValueError):
        with VideoWriter(path, width=W, height=H) as w:
            w.write(coded(3))
            w.write(np.zeros((H + 2, W, 3), np.uint8))  # wrong size
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.mp4"]


def test_input_validation(tmp_path):
    with pytest.raises(ValueError):
        write_video(tmp_path / "f.mp4", coded(2).astype(np.float32))
    with pytest.raises(ValueError):
        write_video(tmp_path / "e.mp4", [])
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "n.mp4", sample_rate=None).write_audio(tone(0.1))
    assert list(tmp_path.iterdir()) == []


def test_write_video_from_iterable_and_fps(tmp_path):
    path = write_video(tmp_path / "g.mp4", (coded(10)[i : i + 3] for i in range(0, 10, 3)), fps=30)
    info = probe(path)
    assert info.n_frames == 10 and info.fps == pytest.approx(30)


def test_write_wav(tmp_path):
    path = write_wav(tmp_path / "a.wav", np.array([0.0, 0.5, -0.5, 2.0], np.float32), sample_rate=8000)
    info = probe(path)
    assert (info.audio_codec, info.audio_sample_rate, info.audio_channels) == ("pcm_s16le", 8000, 1)
    np.testing.assert_allclose(read_audio(path, sample_rate=8000), [0.0, 0.5, -0.5, 32767 / 32768])
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def test_same_frames_encode_to_the_same_bytes(tmp_path):
    """libx264's default build encoded these frames (25 of the demo's 576x768 half-body clip) to other bytes on
    most runs on a Zen 4; the writer's cpu-independent, fixed-thread settings make every run identical."""
    from kling.demo.clip import plan_clip, render_clip_frame
    from kling.demo.corpus import load_recipe
    from kling.hashing import file_sha256

    recipe = load_recipe(half_body=True)
    spec = next(c for c in recipe["clips"] if c["id"] == "cal_halfbody")
    plan = plan_clip(spec, recipe, int(recipe["seed"]))
    frames = np.stack([render_clip_frame(plan, i) for i in range(25)])
    digests = {file_sha256(write_video(tmp_path / f"run{k}.mp4", frames, preset="fast")) for k in range(4)}
    assert len(digests) == 1
