"""Benchmark builders: HDTF-style and long-video benchmarks from a folder of clips, and the demo benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from eval.benchmark_recipes import (build_clip_benchmark, build_demo_benchmark, build_long_benchmark, chain_audio,
                                    identity_from_name, read_image)
from eval.benchmarks import load_benchmark
from kling.io.audio import read_audio
from kling.io.decode import read_frames
from kling.io.encode import write_video
from kling.io.probe import probe


def make_clip(path, seconds, size=48, seed=0, audio=True, fps=25):
    """A small clip: a moving square over a seeded colour, with a tone whose loudness varies."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    base = rng.integers(0, 255, 3)

    def frames():
        for start in range(0, n, 50):
            k = min(50, n - start)
            f = np.broadcast_to(base.astype(np.uint8), (k, size, size, 3)).copy()
            for j in range(k):
                x = (start + j) % (size - 8)
                f[j, 8:16, x:x + 8] = 255
            yield f

    t = np.arange(int(seconds * 16000)) / 16000
    wav = (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    return write_video(path, frames(), fps=fps, audio=wav if audio else None, preset="ultrafast")


def test_hdtf_style_benchmark_from_folder(tmp_path):
    clips = tmp_path / "clips"
    make_clip(clips / "WDA_Anna_000.mp4", 2.0, seed=1)
    make_clip(clips / "WDA_Anna_001.mp4", 1.6, seed=2)
    (clips / "WDA_Anna_001.txt").write_text("Anna talks about the weather.\n")
    make_clip(clips / "RD_Bob_000.mp4", 2.0, seed=3)
    make_clip(clips / "silent.mp4", 1.0, audio=False)
    (clips / "broken.mp4").write_bytes(b"\x00" * 1000)
    res = build_clip_benchmark(clips, tmp_path / "bench", name="mini")
    b = load_benchmark(tmp_path / "bench" / "benchmark.yaml", check_media=True)
    assert b.case_ids == ["RD_Bob_000", "WDA_Anna_000", "WDA_Anna_001"] == res.benchmark.case_ids
    assert {f for f, _ in res.skipped} == {"broken.mp4", "silent.mp4"}
    assert any("no audio" in why for _, why in res.skipped)
    c = b.case("WDA_Anna_001")
    assert c.identity == "WDA_Anna" and c.instruction == "Anna talks about the weather." and c.duration_class == "short"
    assert c.ground_truth == (clips / "WDA_Anna_001.mp4").resolve()
    assert np.array_equal(read_image(c.reference[0]), read_frames(c.ground_truth)[0])  # reference = frame 0
    a = read_audio(c.audio)
    assert np.abs(a - read_audio(c.ground_truth)[: a.size]).max() < 1e-3 and a.size == pytest.approx(1.6 * 16000, abs=1100)
    assert b.case("RD_Bob_000").instruction == "A person talks to the camera."


def test_hdtf_style_cut_to_max_duration(tmp_path):
    make_clip(tmp_path / "clips" / "x_000.mp4", 2.0)
    b = build_clip_benchmark(tmp_path / "clips", tmp_path / "bench", max_duration_s=1.0).benchmark
    c = b.case("x_000")
    assert c.ground_truth == tmp_path / "bench" / "ground_truth" / "x_000.mp4"
    assert len(read_frames(c.ground_truth)) == 25 and read_audio(c.audio).size == 16000
    assert identity_from_name("WDA_BarackObama_000") == "WDA_BarackObama" and identity_from_name("007") == "007"


def test_long_benchmark_keeps_only_long_enough_clips(tmp_path):
    make_clip(tmp_path / "clips" / "talk.mp4", 61.0, size=32)
    make_clip(tmp_path / "clips" / "short.mp4", 2.0, size=32)
    res = build_long_benchmark(tmp_path / "clips", tmp_path / "bench", "1min")
    assert res.benchmark.case_ids == ["talk_1min"] and res.benchmark.name == "long_1min"
    assert res.skipped[0][0] == "short.mp4" and res.skipped[0][1].startswith("too_short")
    c = load_benchmark(tmp_path / "bench" / "benchmark.yaml", check_media=True).case("talk_1min")
    assert c.duration_class == "1min" and c.duration_s == pytest.approx(60.0)
    assert probe(c.ground_truth).n_frames == 1500
    with pytest.raises(ValueError, match="long class"):
        build_long_benchmark(tmp_path / "clips", tmp_path / "b2", "short")
    with pytest.raises(ValueError, match="no usable clip"):
        build_long_benchmark(tmp_path / "clips", tmp_path / "b3", "5min")


def test_chain_audio():
    out = chain_audio([np.ones(3, np.float32), np.zeros(2, np.float32)], 12)
    assert out.tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1]
    with pytest.raises(ValueError):
        chain_audio([np.zeros(0)], 4)


def test_demo_benchmark_from_demo_corpus(demo_corpus, tmp_path):
    b = build_demo_benchmark(demo_corpus, tmp_path / "demo")
    again = load_benchmark(tmp_path / "demo" / "benchmark.yaml", check_media=True)
    assert again.case_ids == b.case_ids
    short = [c for c in b.cases if c.duration_class == "short"]
    assert len(short) == 9 and all(c.ground_truth is not None for c in short)  # 8 close-ups + cal_halfbody
    assert {c.identity for c in short} == {"ava", "bo", "cal"}
    assert "cal_offset" not in b.case_ids and "scene_noface" not in b.case_ids
    long = b.case("ava_long_1min")
    assert long.duration_class == "1min" and long.ground_truth is None and long.identity == "ava"
    chained = read_audio(long.audio)
    first = read_audio(demo_corpus.path("ava_talk"))
    assert chained.size == 60 * 16000 and np.abs(chained[: first.size] - first).max() < 1e-3
    assert b.case("cal_long_1min").identity == "cal"  # two 1-minute cases, two identities
    assert "bo_long_5min" not in b.case_ids  # opt-in
    alone = build_demo_benchmark(demo_corpus, tmp_path / "long", long_classes=["1min"], short=False, name="demo_1min")
    assert alone.name == "demo_1min" and alone.case_ids == ["ava_long_1min", "cal_long_1min"]
    assert load_benchmark(tmp_path / "long" / "benchmark.yaml").name == "demo_1min"
    with pytest.raises(ValueError, match="unknown duration classes"):
        build_demo_benchmark(demo_corpus, tmp_path / "x", long_classes=["10min"])
