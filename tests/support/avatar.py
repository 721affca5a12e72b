"""Small real inputs for the avatar model's tests: a demo-corpus face clip (dlib finds its face) and tiny
training shards written from it by the real shard writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kling.demo.clip import plan_clip, render_clip_frame
from kling.demo.corpus import load_recipe
from kling.io.encode import write_video


def demo_plan(clip: str = "ava_talk", seconds: float = 1.0):
    recipe = load_recipe()
    spec = dict(next(c for c in recipe["clips"] if c["id"] == clip), duration_s=seconds)
    return plan_clip(spec, recipe, recipe["seed"])


def demo_frames(clip: str = "ava_talk", seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n, 256, 256, 3) uint8, 16 kHz audio) of a short demo clip."""
    plan = demo_plan(clip, seconds)
    return np.stack([render_clip_frame(plan, i) for i in range(plan.n_frames)]), plan.audio.astype(np.float32)


def demo_clip_with_tracks(folder: Path, clip: str = "bo_talk", seconds: float = 1.0) -> tuple[Path, pd.DataFrame]:
    """A demo clip written as mp4 and its face-track rows (detected with the project's dlib detector)."""
    from kling.perception.faces.detect import load_detector
    from kling.perception.faces.landmarks import Dlib68Predictor

    frames, audio = demo_frames(clip, seconds)
    video = write_video(folder / f"{clip}.mp4", frames, audio=audio)
    det, pred = load_detector("dlib"), Dlib68Predictor()
    rows = []
    for i, f in enumerate(frames):
        d = max(det.detect(f[None])[0], key=lambda d: d.area)
        rows.append({"frame": i, "track_id": 0, "x0": d.x0, "y0": d.y0, "x1": d.x1, "y1": d.y1,
                     "lm68": pred.predict(f, d.box).reshape(-1).tolist()})
    return video, pd.DataFrame(rows)


def generation_inputs(root: Path, seconds: float) -> tuple[Path, Path, Path, Path]:
    """(root, checkpoint, image, wav) for generation tests: a tiny checkpoint at initialisation (seeded), a
    reference image of another size and aspect than training's, the clip's speech as a 44.1 kHz stereo wav."""
    import wave

    import cv2
    import torch

    from kling.models.registry import get_size
    from kling.models.vae import build_vae
    from kling.train.avatar import AvatarTrainConfig, initial_checkpoint

    torch.manual_seed(0)
    build_vae(get_size("tiny")).save_pretrained(str(root / "vae"))
    ckpt = initial_checkpoint(root / "vae", root / "run", AvatarTrainConfig())
    frames, audio = demo_frames("ava_talk", seconds)
    image = root / "ref.png"
    cv2.imwrite(str(image), cv2.cvtColor(cv2.resize(frames[0], (300, 200)), cv2.COLOR_RGB2BGR))
    # resampled to 16 kHz mono by kling.io.audio
    x = np.interp(np.arange(int(len(audio) * 44100 / 16000)) * 16000 / 44100, np.arange(len(audio)), audio)
    pcm = (np.stack([x, 0.5 * x], 1) * 32767).astype("<i2")
    wav = root / "voice.wav"
    with wave.open(str(wav), "wb") as fh:
        fh.setnchannels(2), fh.setsampwidth(2), fh.setframerate(44100), fh.writeframes(pcm.tobytes())
    return root, ckpt, image, wav
