"""Avatar model training: shards with a recorded held-out split, VAE + model training, exact resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from kling.models.checkpoint import load_tensors
from kling.train.avatar import AvatarTrainConfig, initial_checkpoint, train_avatar
from kling.train.avatar_shards import HeldOutLeak, ShardConfig, demo_held_out, read_shards, write_shards
from kling.train.vae import VaeTrainConfig, train_vae
from tests.support.avatar import demo_clip_with_tracks

torch.set_num_threads(1)
CFG = ShardConfig(frames=9, stride=8, side=32, samples_per_shard=2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    bo, bo_tracks = demo_clip_with_tracks(folder, "bo_talk", 1.0)
    cal, cal_tracks = demo_clip_with_tracks(folder, "cal_talk", 0.4)
    return [("bo_talk-s0-t0", "bo_talk", bo, bo_tracks), ("cal_talk-s0-t0", "cal_talk", cal, cal_tracks)]


@pytest.fixture(scope="module")
def shards(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    split = write_shards(clips, out, held_out={"cal_talk"}, cfg=CFG)
    return out, split


def test_split_is_recorded_and_held_out_never_enters(shards):
    out, split = shards
    assert [t["clip_id"] for t in split["train"]] == ["bo_talk-s0-t0"]
    assert split["skipped"][0]["video_id"] == "cal_talk" and "held out" in split["skipped"][0]["reason"]
    assert split["samples"] == 3 and len(split["shards"]) == 2  # windows at 0, 8, 16 of 25 frames; 2 per shard
    samples = read_shards(out)
    assert {s["meta"]["video_id"] for s in samples} == {"bo_talk"}
    s = samples[0]
    assert s["frames"].shape == (9, 32, 32, 3) and s["audio"].shape == (9 * 640,)
    assert s["mouth"].shape == (9, 20, 2) and ((s["mouth"] > 0) & (s["mouth"] < 32)).all()
    # a split that holds a sample's video out is refused when read
    tampered = json.loads((out / "split.json").read_text())
    (out / "split.json").write_text(json.dumps(tampered | {"held_out": ["bo_talk"]}))
    try:
        with pytest.raises(HeldOutLeak):
            read_shards(out)
    finally:
        (out / "split.json").write_text(json.dumps(tampered))


def test_demo_benchmark_cases_are_held_out():
    from eval.benchmark_recipes import DEMO_RECIPE

    recipe = yaml.safe_load(DEMO_RECIPE.read_text())
    used = {c["clip"] for c in recipe["short"]} | {c for item in recipe.get("long", []) for c in item["clips"]}
    assert used and used <= demo_held_out()


def test_vae_and_avatar_train_and_resume_exactly(shards, tmp_path):
    out, _ = shards
    vae_meta = train_vae(out, tmp_path / "vae", VaeTrainConfig(steps=2, clip_frames=5, threads=1, checkpoint_every=1))
    assert (tmp_path / "vae" / "vae" / "config.json").is_file() and (tmp_path / "vae" / "loss.parquet").is_file()
    vae_cfg = json.loads((tmp_path / "vae" / "vae" / "config.json").read_text())
    assert vae_cfg["latents_std"] != [1.0] * 8  # the data's latent statistics went into the config
    cfg = AvatarTrainConfig(steps=4, batch=2, threads=1, checkpoint_every=2)
    straight = train_avatar(out, vae_meta["vae_dir"], tmp_path / "a", cfg)
    half = train_avatar(out, vae_meta["vae_dir"], tmp_path / "b", AvatarTrainConfig(**{**cfg.__dict__, "steps": 2}))
    assert half["step"] == 2
    resumed = train_avatar(out, vae_meta["vae_dir"], tmp_path / "b", cfg)
    assert straight["step"] == resumed["step"] == 4
    a = load_tensors(tmp_path / "a" / "step-000004" / "model.safetensors")
    b = load_tensors(tmp_path / "b" / "step-000004" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for name in ("ema.safetensors", "optimizer.safetensors", "meta.json"):
        assert (tmp_path / "b" / "step-000004" / name).is_file()
    curve = pd.read_parquet(tmp_path / "b" / "loss.parquet")
    assert curve["step"].tolist() == [1, 2, 3, 4] and curve["loss"].notna().all()
    init = initial_checkpoint(vae_meta["vae_dir"], tmp_path / "init", cfg)
    assert json.loads((init / "meta.json").read_text())["step"] == 0
