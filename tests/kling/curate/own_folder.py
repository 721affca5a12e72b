"""A user's folder of videos for the own-data tests: real talking clips made with kling.demo (and the real
HDTF clips of ../shared/data when asked), a clip too short for a face track, and broken files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SHARED_CLIPS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "clips"


def demo_talking_clip(path: Path, clip_id: str, duration_s: float, identity: str = "bo",
                      audio: bool = True) -> Path:
    """A demo-corpus talking head (a clear face, speech, the mouth moving with it) of any length."""
    from kling.demo import load_recipe
    from kling.demo.clip import iter_clip_frames, plan_clip
    from kling.io.encode import VideoWriter

    recipe = load_recipe()
    plan = plan_clip({"id": clip_id, "identity": identity, "duration_s": duration_s, "motion": "sway"}, recipe,
                     int(recipe.get("seed", 0)))
    with VideoWriter(path, fps=plan.fps, width=plan.size, height=plan.frame_height,
                     sample_rate=plan.sample_rate if audio else None, preset="ultrafast") as w:
        if audio:
            w.write_audio(plan.audio)
        for chunk in iter_clip_frames(plan):
            w.write(chunk)
    return path


def make_user_folder(root: Path, real_seconds: float = 3.0, shared: bool = False) -> dict[str, str]:
    """Fill `root` with videos; returns {video id: what the curation must say about it}."""
    root.mkdir(parents=True, exist_ok=True)
    demo_talking_clip(root / "talk_bo.mp4", "talk_bo", real_seconds, "bo")
    demo_talking_clip(root / "short_half_second.mp4", "short", 0.5, "cal")
    demo_talking_clip(root / "mute.mp4", "mute", 1.2, "ava", audio=False)
    good = (root / "talk_bo.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (root / "empty.mp4").write_bytes(b"")
    expect = {"talk_bo": "kept", "short_half_second": "too_short", "mute": "rejected", "truncated": "rejected",
              "corrupt": "rejected", "empty": "rejected"}
    if shared and SHARED_CLIPS.is_dir():
        for p in sorted(SHARED_CLIPS.glob("*.mp4")):
            os.symlink(p, root / p.name)
            expect[p.stem] = "kept"
    return expect
