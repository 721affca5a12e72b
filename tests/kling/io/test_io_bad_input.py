"""Bad media gives a MediaError subclass with a stable reason; big frames decode or are guarded."""

from __future__ import annotations

import av
import numpy as np
import pytest

from kling.io import (
    EmptyMediaError,
    FrameTooLargeError,
    MediaError,
    MissingMediaError,
    NoVideoStreamError,
    TruncatedMediaError,
    UnreadableMediaError,
    iter_frames,
    probe,
    read_audio,
    read_frames,
    write_video,
    write_wav,
)

READERS = [probe, read_frames, read_audio]


def noisy_frames(n, h=96, w=128, seed=0):
    # noise does not compress: the byte count grows with the frame count, so a cut lands mid-stream
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def plain_mp4(path, n=50):
    """mp4 with its index (moov) at the END, as PyAV writes by default."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        for k, img in enumerate(noisy_frames(n)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = k
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def cut_in_half(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_reason_codes():
    codes = {
        MissingMediaError: "missing",
        UnreadableMediaError: "unreadable",
        TruncatedMediaError: "truncated",
        EmptyMediaError: "empty",
        NoVideoStreamError: "no_video",
        FrameTooLargeError: "frame_too_large",
    }
    for cls, reason in codes.items():
        err = cls("boom", "x.mp4", frames_decoded=3)
        assert isinstance(err, MediaError) and err.reason == reason
        assert err.path == "x.mp4" and err.details == {"frames_decoded": 3} and "x.mp4" in str(err)
    assert issubclass(MissingMediaError, FileNotFoundError)


@pytest.mark.parametrize("reader", READERS)
def test_missing_file(tmp_path, reader):
    with pytest.raises(MissingMediaError) as info:
        reader(tmp_path / "nope.mp4")
    assert info.value.reason == "missing"


@pytest.mark.parametrize("reader", READERS)
def test_zero_length(tmp_path, reader):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(EmptyMediaError):
        reader(tmp_path / "empty.mp4")


@pytest.mark.parametrize("reader", READERS)
def test_corrupt_bytes(tmp_path, reader):
    path = tmp_path / "junk.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(UnreadableMediaError) as info:
        reader(path)
    assert info.value.reason == "unreadable"


def test_text_file_is_not_video(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 200)
    with pytest.raises(UnreadableMediaError):
        read_frames(path)


@pytest.mark.parametrize("reader", READERS)
def test_truncated_mp4_without_index(tmp_path, reader):
    path = cut_in_half(plain_mp4(tmp_path / "full.mp4"), tmp_path / "cut.mp4")
    with pytest.raises(TruncatedMediaError) as info:
        reader(path)
    assert info.value.reason == "truncated"


@pytest.mark.parametrize("name", ["cut.mp4", "cut.mkv"])
def test_truncated_stream_yields_then_reports(tmp_path, name):
    # faststart mp4 (index in front) and matroska still open when cut: the frames before the cut
    # come out, then TruncatedMediaError says the clip is partial
    full = write_video(tmp_path / ("full" + name[3:]), noisy_frames(50), audio=np.zeros(32000, np.float32))
    path = cut_in_half(full, tmp_path / name)
    got = 0
    with pytest.raises(TruncatedMediaError) as info:
        for chunk in iter_frames(path, chunk_size=8):
            got += len(chunk)
    assert 5 < got < 50
    assert info.value.details["frames_decoded"] == got
    assert info.value.details["declared_s"] == pytest.approx(2.0, abs=0.1)
    # a caller that accepts partial clips says so explicitly
    assert len(read_frames(path, allow_truncated=True)) == got
    assert probe(path).n_frames == 50  # the header still describes the whole file
    with pytest.raises(TruncatedMediaError):
        read_audio(path)
    assert 0 < len(read_audio(path, allow_truncated=True)) < 32000


def test_audio_only_file(tmp_path):
    path = write_wav(tmp_path / "speech.wav", np.zeros(16000, np.float32))
    with pytest.raises(NoVideoStreamError) as info:
        next(iter_frames(path))
    assert info.value.reason == "no_video"
    info = probe(path)
    assert info.has_audio and info.video_codec is None and info.streams == ("audio",)
    assert len(read_audio(path)) == 16000


def test_video_without_audio(tmp_path):
    path = write_video(tmp_path / "mute.mp4", noisy_frames(3))
    assert read_audio(path) is None
    assert not probe(path).has_audio
    assert read_frames(path).shape == (3, 96, 128, 3)


@pytest.fixture(scope="module")
def uhd(tmp_path_factory):
    path = tmp_path_factory.mktemp("uhd") / "uhd.mp4"
    frames = np.zeros((3, 2160, 3840, 3), np.uint8)
    frames[:, :, :1920] = 255  # left half white
    return write_video(path, frames, preset="ultrafast", crf=30)


def test_4k_decodes(uhd):
    frames = read_frames(uhd)
    assert frames.shape == (3, 2160, 3840, 3)


def test_4k_downscaled_while_decoding(uhd):
    chunks = list(iter_frames(uhd, max_side=640))
    frames = np.concatenate([c.frames for c in chunks])
    assert frames.shape == (3, 360, 640, 3)
    assert frames[:, :, :300].mean() > 250 and frames[:, :, 340:].mean() < 5


def test_frame_size_guard(uhd):
    with pytest.raises(FrameTooLargeError) as info:
        next(iter_frames(uhd, max_frame_side=2048))
    assert info.value.reason == "frame_too_large"
