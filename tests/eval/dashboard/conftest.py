"""The data folder (Layout) the gallery tests build: tiny real videos, a benchmark spec with a reference
image, and a storyline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eval.benchmarks import Benchmark, Case
from eval.leaderboard import controls as C
from eval.leaderboard.synthetic import fill_synthetic_store
from eval.systems import SystemDescriptor, write_descriptor
from kling.atomic import atomic_write_json
from kling.io.encode import write_video, write_wav
from kling.paths import Layout

CASES = [f"c{i}" for i in range(5)]


@pytest.fixture
def gallery_layout(tmp_path) -> Layout:
    """A data folder: the synthetic store, the demo spec (reference image, audio), videos of c0 for two
    systems and the ground-truth control (c1 for "ours" only) and a two-shot storyline of c0."""
    layout = Layout(tmp_path / "data")
    fill_synthetic_store(layout.store, CASES)
    bench_dir = layout.benchmark_dir("demo")
    bench_dir.mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(bench_dir / "ref.png")
    write_wav(bench_dir / "talk.wav", np.zeros(16000, np.float32))
    cases = [Case(id=c, reference=(bench_dir / "ref.png",), audio=bench_dir / "talk.wav", instruction="talks and nods",
                  duration_class="short", language="en") for c in CASES]
    Benchmark("demo", "1", cases, root=bench_dir).save()
    frames = np.random.default_rng(0).integers(0, 255, (50, 32, 32, 3), dtype=np.uint8)  # 2 s at 25 fps
    for system, n, cases_with_video in (("ours", 50, ("c0", "c1")), ("theirs", 40, ("c0",)), (C.GROUND_TRUTH, 50, ("c0",))):
        folder = layout.systems_dir("demo") / system
        for case in cases_with_video:
            write_video(folder / f"{case}.mp4", frames[:n], audio=np.zeros(16000 * n // 25, np.float32), preset="ultrafast")
        write_descriptor(folder, SystemDescriptor(system, "1", "test", kind="control" if C.is_control(system) else "model"))
    shot = dict(speaker="A", emotion="happy", head_motion="nod", camera="static close-up", expression="smile",
                gesture="none", prompt="she smiles")
    atomic_write_json(layout.storylines_dir("demo") / "c0.json", {"status": "ok", "storyline": {
        "global_prompt": "a talk", "duration_s": 2.0,
        "shots": [shot | dict(t_start=0.0, t_end=0.8), shot | dict(t_start=0.8, t_end=2.0, head_motion="shake")]}})
    return layout
