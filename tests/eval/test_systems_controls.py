"""Control systems: ground truth, audio shifted by 0.5 s, still reference, other identity (streamed encode)."""

from __future__ import annotations

import numpy as np
import pytest

from eval.benchmark_recipes import build_demo_benchmark, read_image, write_image
from eval.benchmarks import Benchmark, Case
from eval.control_videos import generate_controls, other_identity_pairs
from eval.leaderboard.controls import AUDIO_SHIFTED, GROUND_TRUTH, OTHER_IDENTITY, STILL_REFERENCE
from eval.systems import check_system, load_system
from kling.io.audio import read_audio
from kling.io.decode import read_frames
from kling.io.encode import write_video, write_wav

SR = 16000


def _speechy(seconds, seed):
    """Bursts of a tone with silences, so a 0.5 s shift is easy to see."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = np.repeat(rng.random(int(seconds * 5)) > 0.5, SR // 5)[: t.size].astype(np.float32)
    return (0.4 * np.sin(2 * np.pi * 220 * t) * env).astype(np.float32)


def _case(tmp_path, cid, identity, colour, seconds=2.0, gt=True):
    n = int(seconds * 25)
    frames = np.zeros((n, 48, 64, 3), np.uint8)
    frames[:] = colour
    frames[np.arange(n), 10:20, np.arange(n) % 50] = 255  # a moving bar: frames differ
    audio = _speechy(seconds, seed=sum(colour))
    wav = write_wav(tmp_path / f"{cid}.wav", audio)
    ref = write_image(tmp_path / f"{cid}.png", frames[0])
    video = write_video(tmp_path / f"{cid}.mp4", frames, audio=audio, preset="ultrafast") if gt else None
    return Case(id=cid, reference=(ref,), audio=wav, instruction="talks", duration_class="short", language="en",
                ground_truth=video, identity=identity, duration_s=seconds)


@pytest.fixture()
def bench(tmp_path):
    cases = [_case(tmp_path, "anna_0", "anna", (200, 40, 40)), _case(tmp_path, "anna_1", "anna", (190, 60, 40), 1.6),
             _case(tmp_path, "bob_0", "bob", (40, 40, 200)),
             _case(tmp_path, "bob_long", "bob", (40, 60, 200), 3.0, gt=False)]
    return Benchmark(name="mini", version="1", cases=cases, root=tmp_path)


def test_pairs_pick_another_identity_with_ground_truth(bench):
    assert other_identity_pairs(bench) == {"anna_0": "bob_0", "anna_1": "bob_0", "bob_0": "anna_0", "bob_long": "anna_0"}


def test_controls_are_what_they_claim(bench, tmp_path):
    res = generate_controls(bench, tmp_path / "controls")
    assert ("control.ground_truth", "bob_long", "case has no ground truth") in res.skipped
    s = {n: load_system(f) for n, f in res.folders.items()}
    assert s[GROUND_TRUTH].descriptor.kind == "control" and s[AUDIO_SHIFTED].descriptor.extra["shift_s"] == 0.5
    assert s[OTHER_IDENTITY].descriptor.extra["pairs"]["anna_0"] == "bob_0"
    # ground truth: same frames (one more lossy encode) and the case's audio
    gt_src, gt = read_frames(bench.case("anna_0").ground_truth), read_frames(s[GROUND_TRUTH].video("anna_0"))
    assert gt.shape == gt_src.shape and np.abs(gt.astype(int) - gt_src).mean() < 3
    a_gt, a_sh = read_audio(s[GROUND_TRUTH].video("anna_0")), read_audio(s[AUDIO_SHIFTED].video("anna_0"))
    assert a_gt.size == a_sh.size and abs(a_gt.size - 2 * SR) <= 1024  # AAC pads to whole 1024-sample frames
    assert np.abs(a_sh[: SR // 2 - 600]).max() < 0.01  # 0.5 s of silence first
    lags = np.arange(-10000, 10001, 80)
    corr = [np.dot(a_gt[max(0, -k): a_gt.size - max(0, k)], a_sh[max(0, k): a_sh.size - max(0, -k)]) for k in lags]
    assert abs(lags[int(np.argmax(corr))] - SR // 2) <= 80  # audio lags by 0.5 s
    assert np.array_equal(read_frames(s[AUDIO_SHIFTED].video("anna_0")), gt)  # same frames as the GT control
    # still reference: every frame is the reference image, as long as the audio
    still = read_frames(s[STILL_REFERENCE].video("bob_long"))
    ref = read_image(bench.case("bob_long").reference[0])
    assert len(still) == 75 and np.abs(still.astype(int) - ref).mean() < 3 and np.ptp(still.astype(int), axis=0).max() < 12
    # other identity: bob's frames (looped to anna_0's 2 s) with anna's audio
    other = read_frames(s[OTHER_IDENTITY].video("anna_0"))
    bob = read_frames(bench.case("bob_0").ground_truth)
    assert len(other) == 50 and np.abs(other[0].astype(int) - bob[0]).mean() < 3
    assert np.abs(read_audio(s[OTHER_IDENTITY].video("anna_0")) - a_gt).mean() < 0.01
    long_other = read_frames(s[OTHER_IDENTITY].video("bob_long"))  # 3 s from anna_0's 2 s: looped
    assert len(long_other) == 75 and np.abs(long_other[50].astype(int) - long_other[0]).mean() < 3
    rep = check_system(s[GROUND_TRUTH], bench)
    assert {c.case_id: c.status for c in rep.cases}["bob_long"] == "missing" and len(rep.ok) == 3


def test_controls_are_reused_until_inputs_change(bench, tmp_path):
    first = generate_controls(bench, tmp_path / "c")
    assert len(first.written) == 3 * 4 + 2  # 4 controls for each case with ground truth; still + other for the long one
    again = generate_controls(bench, tmp_path / "c")
    assert again.written == [] and len(again.reused) == len(first.written)
    moved = generate_controls(bench, tmp_path / "c", shift_s=0.3)
    assert sorted(moved.written) == [(AUDIO_SHIFTED, c) for c in ("anna_0", "anna_1", "bob_0")]


def test_controls_of_the_demo_benchmark_pair_demo_identities(demo_corpus, tmp_path):
    b = build_demo_benchmark(demo_corpus, tmp_path / "demo", long_classes=())
    b.cases = [b.case("ava_talk"), b.case("bo_talk"), b.case("ava_nod")]
    pairs = other_identity_pairs(b)
    ident = {c.id: c.identity for c in b.cases}
    assert all(ident[k] != ident[v] for k, v in pairs.items())
    res = generate_controls(b, tmp_path / "controls")
    assert res.skipped == [] and len(res.written) == 12
    for name, folder in res.folders.items():
        assert check_system(load_system(folder), b).problems == [], name


def test_a_benchmark_without_ground_truth_gets_only_the_still_control(tmp_path):
    """Long cases have no ground truth: only the still-reference control exists for them, and a control folder
    written for an earlier version of the benchmark loses its videos and descriptor (no empty systems)."""
    with_truth = Benchmark(name="long", version="1", cases=[_case(tmp_path, "anna_0", "anna", (200, 40, 40)),
                                                            _case(tmp_path, "bob_0", "bob", (40, 40, 200))],
                           root=tmp_path)
    generate_controls(with_truth, tmp_path / "c")
    assert (tmp_path / "c" / GROUND_TRUTH / "anna_0.mp4").is_file()
    long = Benchmark(name="long", version="1", root=tmp_path,
                     cases=[_case(tmp_path, "bob_long", "bob", (40, 60, 200), 3.0, gt=False)])
    res = generate_controls(long, tmp_path / "c")
    assert list(res.folders) == [STILL_REFERENCE]
    assert check_system(load_system(res.folders[STILL_REFERENCE]), long).problems == []
    for gone in (GROUND_TRUTH, AUDIO_SHIFTED, OTHER_IDENTITY):
        assert not list((tmp_path / "c" / gone).glob("*")), gone
