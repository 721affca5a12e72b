"""kling.io.decode: constant 25 fps by timestamps, chunking, rotation, downscale, probe."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import av.error
import av.filter
import numpy as np
import pytest

from kling.io import FrameChunk, iter_frames, probe, read_frames, write_video

W, H, BANDS = 64, 32, 8  # each source frame shows its index in binary: 8 black/white bands of 8 px


def pattern(index: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    for b in range(BANDS):
        if index >> b & 1:
            img[:, b * (W // BANDS) : (b + 1) * (W // BANDS)] = 255
    return img


def index_of(img: np.ndarray) -> int:
    """Read the band code back (robust to codec noise and to downscaling)."""
    h, w = img.shape[:2]
    band = w / BANDS
    bits = [img[:, int(b * band + band / 4) : int((b + 1) * band - band / 4)].mean() > 127 for b in range(BANDS)]
    return sum(1 << b for b, on in enumerate(bits) if on)


def encode_source(path, times, time_base, codec="libx264", rotation=None, size=(W, H)):
    """Frames k = 0.. at ``times[k]`` seconds (exact Fractions), explicit pts in ``time_base``."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=1 / time_base)
        s.width, s.height = size
        s.pix_fmt = "yuv444p" if codec == "ffv1" else "yuv420p"
        s.codec_context.time_base = time_base
        if codec == "libx264":
            s.options = {"crf": "0", "preset": "ultrafast"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        for k, t in enumerate(times):
            img = pattern(k) if size == (W, H) else np.full((size[1], size[0], 3), 128, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(t / time_base)
            frame.time_base = time_base
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def expected(times, fps=25, last_duration=None):
    """The fps-filter rule written out: slot_k = round_half_up(t_k * fps); output i shows the latest k
    with slot_k <= i; the output ends at the end of the last frame."""
    slots = [math.floor((t - times[0]) * fps + Fraction(1, 2)) for t in times]
    n = math.floor((times[-1] + last_duration - times[0]) * fps + Fraction(1, 2))
    return [max(k for k, s in enumerate(slots) if s <= i) for i in range(n)]


def decoded_indices(path, **kw):
    return [index_of(f) for f in read_frames(path, **kw)]


def test_30fps_lands_on_timestamp_frames(tmp_path):
    times = [Fraction(k, 30) for k in range(60)]
    path = encode_source(tmp_path / "cfr30.mp4", times, Fraction(1, 30))
    got = decoded_indices(path)
    assert len(got) == 50  # 2 s at 25 fps
    assert got == expected(times, last_duration=Fraction(1, 30))
    # spot checks of the rule by hand: slot 3 (t=0.12) shows frame 4 (t=0.133), frame 3 (slot 2.5->3) dropped
    assert got[:6] == [0, 1, 2, 4, 5, 6]


def test_ntsc_2997_in_matroska_ffv1(tmp_path):
    tb = Fraction(1001, 30000)
    times = [k * tb for k in range(90)]
    path = encode_source(tmp_path / "ntsc.mkv", times, tb, codec="ffv1")
    got = decoded_indices(path)
    want = expected(times, last_duration=tb)
    assert len(got) == len(want) == 75  # 3.003 s -> round(75.075)
    assert got == want
    # 29.97 is not 30: by frame 89 the drift is a whole source frame against an index-based mapping
    assert got[-1] == 89 and want != [math.floor(i * 30 / 25) for i in range(75)]


VFR_MS = [0, 40, 80, 200, 210, 220, 230, 500, 540, 580, 620, 700, 1000, 1013, 1500, 1540]


def test_vfr_follows_timestamps(tmp_path):
    times = [Fraction(ms, 1000) for ms in VFR_MS]
    path = encode_source(tmp_path / "vfr.mp4", times, Fraction(1, 1000))
    got = decoded_indices(path)
    want = expected(times, last_duration=Fraction(40, 1000))
    assert got[: len(want) - 1] == want[:-1]
    assert abs(len(got) - len(want)) <= 1  # last frame's duration is what the muxer recorded
    assert probe(path).is_vfr


def _ffmpeg_fps_filter(path, fps=25):
    """Reference: FFmpeg's own fps filter (round=near) through PyAV's filter graph."""
    out = []
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        graph = av.filter.Graph()
        src = graph.add_buffer(template=vs)
        flt = graph.add("fps", f"fps={fps}:round=near")
        sink = graph.add("buffersink")
        src.link_to(flt)
        flt.link_to(sink)
        graph.configure()

        def drain():
            while True:
                try:
                    out.append(index_of(sink.pull().to_ndarray(format="rgb24")))
                except (av.error.BlockingIOError, av.error.EOFError):
                    return

        for frame in c.decode(vs):
            src.push(frame)
            drain()
        src.push(None)
        drain()
    return out


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv"])
def test_vfr_matches_ffmpeg_fps_filter(tmp_path, name):
    times = [Fraction(ms, 1000) for ms in VFR_MS]
    path = encode_source(tmp_path / name, times, Fraction(1, 1000))
    assert decoded_indices(path) == _ffmpeg_fps_filter(path)


def test_chunks_bounded_contiguous_with_source_pts(tmp_path):
    times = [Fraction(k, 30) for k in range(60)]
    path = encode_source(tmp_path / "cfr30.mp4", times, Fraction(1, 30))
    chunks = list(iter_frames(path, chunk_size=7))
    assert all(isinstance(c, FrameChunk) and 1 <= len(c) <= 7 for c in chunks)
    assert [c.start for c in chunks] == list(range(0, 50, 7))
    frames = np.concatenate([c.frames for c in chunks])
    pts = np.concatenate([c.pts for c in chunks])
    assert frames.dtype == np.uint8 and frames.shape == (50, H, W, 3)
    assert pts.dtype == np.float64 and np.all(np.diff(pts) >= 0)
    # pts is the time of the source frame shown: index k <-> k/30 s
    np.testing.assert_allclose(pts, [index_of(f) / 30 for f in frames], atol=1e-9)


def test_fps_argument(tmp_path):
    times = [Fraction(k, 30) for k in range(30)]
    path = encode_source(tmp_path / "cfr30.mp4", times, Fraction(1, 30))
    assert decoded_indices(path, fps=10) == expected(times, fps=10, last_duration=Fraction(1, 30))


def test_display_matrix_rotation(tmp_path):
    path = encode_source(tmp_path / "rot.mp4", [Fraction(k, 25) for k in range(3)], Fraction(1, 25), rotation=90)
    frames = read_frames(path)
    assert frames.shape == (3, W, H, 3)  # counter-clockwise 90: portrait
    # band 0 (leftmost) of frame 1 is white; turned 90 degrees counter-clockwise it is the bottom rows
    assert frames[1, -4:].mean() > 200 and frames[1, :4].mean() < 50
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (H, W, 270)


def test_rotate_tag_fallback(tmp_path):
    path = tmp_path / "tag.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.metadata["rotate"] = "90"  # legacy tag: clockwise degrees
        for k in range(2):
            f = av.VideoFrame.from_ndarray(pattern(1), format="rgb24")
            f.pts = k
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    frames = read_frames(path)
    assert frames.shape[1:3] == (W, H)
    assert frames[0, :4].mean() > 200 and frames[0, -4:].mean() < 50  # left band turned clockwise: top


def test_max_side_keeps_aspect_and_content(tmp_path):
    times = [Fraction(k, 25) for k in range(5)]
    path = encode_source(tmp_path / "small.mp4", times, Fraction(1, 25))
    frames = read_frames(path, max_side=32)
    assert frames.shape == (5, 16, 32, 3)
    assert [index_of(f) for f in frames] == [0, 1, 2, 3, 4]
    assert read_frames(path, max_side=1000).shape[1:3] == (H, W)  # never upscaled


def test_probe_cfr(tmp_path):
    tb = Fraction(1001, 30000)
    path = encode_source(tmp_path / "ntsc.mp4", [k * tb for k in range(30)], tb)
    info = probe(path)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert (info.width, info.height, info.rotation, info.n_frames) == (W, H, 0, 30)
    assert info.video_codec == "h264" and not info.has_audio and not info.is_vfr
    assert info.duration_s == pytest.approx(1.001, abs=0.01)
    assert info.streams == ("video",) and info.size_bytes == path.stat().st_size


def test_probe_b_frames_are_not_vfr(tmp_path):
    # x264's default preset reorders frames (B-pyramid): packet pts arrive out of order
    frames = np.random.default_rng(0).integers(0, 256, (120, 32, 32, 3), dtype=np.uint8)
    info = probe(write_video(tmp_path / "b.mp4", frames, preset="medium"))
    assert not info.is_vfr and info.n_frames == 120 and info.fps == 25.0
