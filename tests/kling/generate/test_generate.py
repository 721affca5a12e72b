"""`kling generate`: mp4 with audio and metadata, any image size and audio format, same seed => same video."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kling.generate.avatar_pipeline import AvatarPipeline, GenerateConfig, load_checkpoint
from kling.generate.clip import generate_clip
from kling.io.decode import read_frames
from kling.io.probe import probe
from tests.support.avatar import generation_inputs

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return generation_inputs(tmp_path_factory.mktemp("gen"), seconds=0.6)


def test_same_seed_same_video_and_metadata(inputs):
    root, ckpt, image, wav = inputs
    pipe = AvatarPipeline(load_checkpoint(root / "run"))
    cfg = GenerateConfig(steps=2, seed=7)
    a = generate_clip(pipe, image, wav, root / "a.mp4", prompt="a woman talks", config=cfg)
    b = generate_clip(pipe, image, wav, root / "b.mp4", prompt="a woman talks", config=cfg)
    c = generate_clip(pipe, image, wav, root / "c.mp4", prompt="a woman talks", config=GenerateConfig(steps=2, seed=8))
    fa, fb, fc = (read_frames(root / f"{n}.mp4") for n in "abc")
    assert fa.shape == (15, 200, 300, 3)  # 0.6 s at 25 fps, the reference image's size
    assert np.array_equal(fa, fb) and not np.array_equal(fa, fc)
    assert (root / "a.mp4").read_bytes() == (root / "b.mp4").read_bytes()
    info = probe(root / "a.mp4")
    assert info.has_audio and info.audio_sample_rate == 16000
    meta = json.loads((root / "a.json").read_text())
    assert meta["seed"] == 7 and meta["checkpoint_sha256"] == a["checkpoint_sha256"] and len(meta["checkpoint_sha256"]) == 64
    assert meta["generate_config"]["steps"] == 2 and meta["model_config"]["size"] == "tiny"
    # the area outside the face window is the reference image, untouched
    assert np.abs(fa[0, :, :20].astype(int) - cv2.resize(cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB), (300, 200))[:, :20]).mean() < 4


def test_first_last_and_negative_frame_options(inputs):
    root, ckpt, image, wav = inputs
    pipe = AvatarPipeline(load_checkpoint(root / "run"))
    meta = generate_clip(pipe, image, wav, root / "fl.mp4", first=image, last=image,
                         config=GenerateConfig(steps=1, negative_frame=True))
    assert meta["first"] and meta["last"] and meta["generate_config"]["negative_frame"]
    meta = generate_clip(pipe, image, wav, root / "w5.mp4", config=GenerateConfig(steps=1, window=5, anchor="reference"))
    assert meta["windows"] == 4 and read_frames(root / "w5.mp4").shape[0] == 15  # 15 frames in windows of 4 new
    assert meta["joins"] == [4, 8, 12]  # each window starts on the last frame of the one before
    assert pipe.window_starts(15, GenerateConfig(window=5), last_known=True) == [0, 4, 8, 10]  # ends on frame 14
    with pytest.raises(ValueError, match="4k \\+ 1"):
        pipe(np.zeros((64, 64, 3), np.uint8), np.zeros(16000, np.float32), config=GenerateConfig(window=6), window_box=(0, 0, 32, 32))


def test_cli(inputs):
    from kling.cli import _register_all, app

    root, ckpt, image, wav = inputs
    _register_all()
    res = CliRunner().invoke(app, ["generate", "--image", str(image), "--audio", str(wav), "--out", str(root / "cli.mp4"),
                                   "--seed", "3", "--steps", "1", "--checkpoint", str(root / "run")])
    assert res.exit_code == 0, res.output
    assert (root / "cli.mp4").is_file() and json.loads((root / "cli.json").read_text())["seed"] == 3
    blank = root / "blank.png"
    cv2.imwrite(str(blank), np.full((64, 64, 3), 127, np.uint8))
    res = CliRunner().invoke(app, ["generate", "--image", str(blank), "--audio", str(wav), "--out", str(root / "x.mp4"),
                                   "--checkpoint", str(root / "run")])
    assert res.exit_code == 1 and "no face" in res.output


def test_benchmark_cases_become_a_system_folder_and_unchanged_clips_are_kept(inputs):
    from types import SimpleNamespace

    from kling.generate.system import generate_cases

    root, ckpt, image, wav = inputs
    blank = root / "blank_case.png"
    cv2.imwrite(str(blank), np.full((64, 64, 3), 127, np.uint8))
    cases = [SimpleNamespace(id="talk", reference=[image], audio=wav, instruction="a woman talks"),
             SimpleNamespace(id="noface", reference=[blank], audio=wav, instruction=None)]
    out = root / "system"
    first = generate_cases(root / "run", cases, out, GenerateConfig(steps=1))
    assert "no face" in first["noface"]["skipped"] and not (out / "noface.mp4").exists()
    assert first["talk"]["prompt"] == "a woman talks" and first["talk"]["case"] == "talk"
    made = (out / "talk.mp4").stat().st_mtime_ns
    again = generate_cases(root / "run", cases, out, GenerateConfig(steps=1))
    assert again["talk"]["reused"] and (out / "talk.mp4").stat().st_mtime_ns == made
    other = generate_cases(root / "run", cases[:1], out, GenerateConfig(steps=1, seed=5))
    assert not other["talk"].get("reused") and other["talk"]["seed"] == 5  # another config: generated again


def test_a_checkpoint_of_an_older_trainer_is_refused_with_the_way_out(inputs, tmp_path):
    import shutil

    root, _, _, _ = inputs
    folder = load_checkpoint(root / "run").folder
    old = shutil.copytree(folder, tmp_path / folder.name)
    shutil.copytree(folder.parent / "vae", tmp_path / "vae")
    meta = json.loads((old / "meta.json").read_text())
    (old / "meta.json").write_text(json.dumps(meta | {"trainer_version": 1}))
    with pytest.raises(ValueError, match="trainer version 1.*retrain"):
        load_checkpoint(old)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the request would succeed")
def test_the_device_is_the_machines_choice_and_is_honoured(inputs, monkeypatch):
    """$KLING_DEVICE (default cpu) places the model, VAE and encoders; on a machine without CUDA a cuda request
    fails loudly instead of quietly running on the CPU."""
    root, _, _, _ = inputs
    assert load_checkpoint(root / "run").model.null_audio.device.type == "cpu"
    monkeypatch.setenv("KLING_DEVICE", "cuda")
    with pytest.raises((AssertionError, RuntimeError), match="(?i)cuda"):
        load_checkpoint(root / "run")
