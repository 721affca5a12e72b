"""Director inputs made here: synthetic speech (kling.demo.speech) and demo-corpus faces (kling.demo)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


def _frame(recipe, clip_id: str) -> np.ndarray:
    from kling.demo.clip import plan_clip, render_clip_frame

    spec = next(c for c in recipe["clips"] if c["id"] == clip_id)
    return render_clip_frame(plan_clip(spec, recipe, recipe["seed"]), 0)


@pytest.fixture(scope="session")
def director_inputs(tmp_path_factory):
    from kling.demo.corpus import load_recipe
    from kling.demo.speech import silence, synthesize_speech
    from kling.io.encode import write_wav

    out = tmp_path_factory.mktemp("director_inputs")
    rec = load_recipe()
    files = {}
    for name, cid in [("ava", "ava_talk"), ("bo", "bo_talk"), ("noface", "scene_noface")]:
        files[name] = out / f"{name}.png"
        cv2.imwrite(str(files[name]), cv2.cvtColor(_frame(rec, cid), cv2.COLOR_RGB2BGR))
    files["two"] = out / "two.png"
    two = np.concatenate([_frame(rec, "ava_talk"), _frame(rec, "bo_talk")], axis=1)
    cv2.imwrite(str(files["two"]), cv2.cvtColor(two, cv2.COLOR_RGB2BGR))
    calm = synthesize_speech(6.0, 5, f0=120, peak=0.25, syllable_hz=(2.0, 2.8), pause_s=(0.6, 1.0)).audio
    loud = synthesize_speech(6.0, 6, f0=240, peak=0.95, syllable_hz=(6.0, 8.0), pause_s=(0.2, 0.4)).audio
    for name, x in [("calm", calm), ("loud", loud), ("silent", silence(4.0, 1).audio)]:
        files[name] = write_wav(out / f"{name}.wav", x, 16000)
    # two speakers on one timeline: A speaks 0-4 s, B 5-9 s (one track each)
    a = synthesize_speech(4.0, 7, f0=210).audio
    b = synthesize_speech(4.0, 8, f0=110).audio
    ta, tb = np.zeros(9 * 16000, np.float32), np.zeros(9 * 16000, np.float32)
    ta[: len(a)] = a
    tb[5 * 16000: 5 * 16000 + len(b)] = b
    files["spk_a"] = write_wav(out / "spk_a.wav", ta, 16000)
    files["spk_b"] = write_wav(out / "spk_b.wav", tb, 16000)
    return files
