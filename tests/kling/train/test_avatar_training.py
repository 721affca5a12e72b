"""Avatar model training: shards with a recorded held-out split, VAE + model training, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from kling.models.checkpoint import load_tensors
from kling.train.avatar import AvatarTrainConfig, initial_checkpoint, train_avatar
from kling.train.avatar_shards import HeldOutLeak, ShardConfig, demo_held_out, read_shards, write_shards
from kling.train.vae import VaeTrainConfig, chained_windows, train_vae
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


def test_vae_clips_longer_than_a_window_chain_consecutive_windows(shards, tmp_path):
    out, _ = shards
    samples = read_shards(out)  # bo_talk's windows at frames 0, 8, 16: each starts on the last of the one before
    assert chained_windows(samples, 9) is samples
    two = chained_windows(samples, 17)
    assert [len(c["frames"]) for c in two] == [17, 17]  # from 0 and from 8; the window at 16 has no successor
    assert np.array_equal(two[0]["frames"][8:], samples[1]["frames"]) and two[1]["mouth"].shape == (17, 20, 2)
    assert [len(c["frames"]) for c in chained_windows(samples, 25)] == [25]
    moved = [s if i != 1 else s | {"meta": s["meta"] | {"window": [0.0, 0.0, 1.0]}} for i, s in enumerate(samples)]
    with pytest.raises(ValueError, match="spans 17 frames"):  # a new face window breaks the chain
        chained_windows(moved, 17)
    meta = train_vae(out, tmp_path / "vae", VaeTrainConfig(steps=1, clip_frames=17, threads=1))
    assert meta["steps"] == 1 and meta["config"]["clip_frames"] == 17


def test_runs_are_one_folder_per_recipe_and_reused(shards, tmp_path):
    from kling.train.avatar import train_avatar_run
    from kling.train.runs import LATEST, latest_run
    from kling.train.vae import train_vae_run

    out, _ = shards
    vcfg = VaeTrainConfig(steps=1, clip_frames=5, threads=1)
    vae = train_vae_run(out, tmp_path / "vae", vcfg)
    assert not vae.get("reused") and latest_run(tmp_path / "vae") == tmp_path / "vae" / vae["dir"].split("/")[-1]
    again = train_vae_run(out, tmp_path / "vae", VaeTrainConfig(steps=1, clip_frames=5, threads=2))
    assert again["reused"] and again["dir"] == vae["dir"]  # the thread count is the machine's, not the recipe's
    acfg = AvatarTrainConfig(steps=2, batch=1, threads=1)
    held = read_shards(out)[:2]  # stand-ins for held-out windows: the record's mechanics
    first = train_avatar_run(out, vae, tmp_path / "avatar", acfg, held_out=held)
    assert first["step"] == 2 and not first.get("reused")
    assert first["held_out_audio"]["checkpoint"] == "step-000002" and first["held_out_audio"]["windows"] == 2
    second = train_avatar_run(out, vae, tmp_path / "avatar", acfg, held_out=held)
    assert second["reused"] and second["dir"] == first["dir"]
    assert second["held_out_audio"] == first["held_out_audio"]  # kept in the run folder, not measured again
    pointer = json.loads((tmp_path / "avatar" / LATEST).read_text())
    assert pointer["checkpoint"] == first["dir"] and pointer["recipe"]["vae"]
    from kling.generate.avatar_pipeline import load_checkpoint

    assert load_checkpoint(tmp_path / "avatar").folder == Path(first["dir"])  # `kling generate`'s default
    other = train_avatar_run(out, vae, tmp_path / "avatar", AvatarTrainConfig(steps=2, batch=1, threads=1, seed=1))
    assert other["run_dir"] != first["run_dir"]  # another recipe, another folder
    assert load_checkpoint(tmp_path / "avatar").folder == Path(other["dir"])


def test_shards_of_a_workspace_are_rewritten_only_when_inputs_change(clips, tmp_path, monkeypatch):
    import kling.train.avatar_shards as shards_mod
    from kling.curate.steps import MANIFEST_NAME

    monkeypatch.setattr(shards_mod, "curated_clips", lambda root: iter(clips))
    ws = tmp_path / "ws"
    (ws / "captions").mkdir(parents=True)
    pd.DataFrame({"clip_id": ["bo_talk-s0-t0"], "caption": ["A bearded man talks."]}).to_parquet(ws / "captions" / "bo_talk.parquet")
    pd.DataFrame({"clip_id": ["bo_talk-s0-t0"], "kept": [True]}).to_parquet(ws / MANIFEST_NAME)
    first = shards_mod.shard_curated(ws, tmp_path / "out", {"cal_talk"}, CFG)
    assert not first.get("reused") and first["samples"] == 3
    assert {s["meta"]["text"] for s in read_shards(tmp_path / "out")} == {"A bearded man talks."}
    assert shards_mod.shard_curated(ws, tmp_path / "out", {"cal_talk"}, CFG)["reused"]
    changed = shards_mod.shard_curated(ws, tmp_path / "out", {"cal_talk", "bo_talk"}, CFG)
    assert not changed.get("reused") and changed["samples"] == 0
    from kling.train.avatar_shards import NoTrainingSamples
    from kling.train.vae import train_vae_run

    with pytest.raises(NoTrainingSamples, match="held out"):  # before any work; the assets record it as a skip
        train_vae_run(tmp_path / "out", tmp_path / "vae", VaeTrainConfig(steps=1, clip_frames=5, threads=1))


def test_paper_shapes_never_train_from_random_weights(shards, tmp_path, monkeypatch):
    from kling.train.avatar import build_model
    from kling.train.vae import train_vae_run
    from kling.weights import WeightsUnavailable

    monkeypatch.setenv("KLING_WEIGHTS", str(tmp_path / "no_weights"))
    out, _ = shards
    with pytest.raises(WeightsUnavailable) as vae_err:
        train_vae_run(out, tmp_path / "vae", VaeTrainConfig(size="wan2.1-t2v-1.3b"))
    with pytest.raises(WeightsUnavailable) as model_err:
        build_model(AvatarTrainConfig(size="wan2.1-t2v-1.3b"))
    assert "wan21_vae" in vae_err.value.fetch_command and "fetch it with" in str(vae_err.value)
    assert "wan21_t2v_1_3b" in model_err.value.fetch_command


def test_audio_reliance_tells_a_model_that_ignores_audio_from_one_that_uses_it(shards):
    from kling.models.avatar import AvatarModel
    from kling.models.registry import get_size
    from kling.models.vae import build_vae
    from kling.train.avatar import audio_reliance

    samples = read_shards(shards[0])[:2]
    torch.manual_seed(0)
    vae, model = build_vae(get_size("tiny")).eval(), AvatarModel(get_size("tiny"))
    with torch.no_grad():
        for layer in model.audio_layers:  # deaf: the audio layers add nothing
            layer.to_out.weight.zero_()
            layer.to_out.bias.zero_()
    deaf = audio_reliance(model, vae, samples, sigmas=(0.5,))
    assert deaf["gain"] == 0.0 and deaf["mouth_loss"]["own"] == deaf["mouth_loss"]["other"] == deaf["mouth_loss"]["null"]
    with torch.no_grad():
        for layer in model.audio_layers:
            layer.to_out.weight.normal_(0, 1.0)
    live = audio_reliance(model, vae, samples, sigmas=(0.5,))
    assert live["mouth_loss"]["own"] != live["mouth_loss"]["other"] and live["windows"] == 2
    assert -1.0 <= live["lip_head_corr"] <= 1.0
    with pytest.raises(ValueError, match="two windows"):
        audio_reliance(model, vae, samples[:1])


def test_lip_loss_trains_the_audio_encoder_to_the_mouth_opening(shards):
    """The lip loss's gradient reaches the audio encoder and fits the landmarks' mouth opening from the audio alone
    (here on the training windows themselves; on the demo's held-out clips the trained model's head reaches a
    correlation of ~0.95, recorded by the training/avatar asset as held_out_audio.lip_head_corr)."""
    from kling.models.avatar import AvatarModel
    from kling.models.registry import get_size
    from kling.train.avatar import _audio, lip_loss, mouth_opening

    samples = read_shards(shards[0])
    torch.manual_seed(0)
    model = AvatarModel(get_size("tiny"))
    params = list(model.audio_encoder.parameters()) + list(model.lip_head.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    audio = torch.stack([_audio(s) for s in samples])
    opening = torch.stack([torch.from_numpy(mouth_opening(s["mouth"])) for s in samples])

    def corr() -> float:
        with torch.no_grad():
            pred = model.lip_head(model.audio_encoder(audio, opening.shape[1]))[..., 0]
        return float(torch.corrcoef(torch.stack([pred.flatten(), opening.flatten()]))[0, 1])

    before = corr()
    for _ in range(400):
        loss = lip_loss(model, audio, opening)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert opening.std() > 0.02  # the clip talks: its mouth opens and closes
    after = corr()
    assert after > max(0.5, before + 0.3)


def test_training_at_several_sides_resizes_each_batch_and_is_recorded(shards, tmp_path, monkeypatch):
    import kling.train.avatar as trainer
    from kling.train.avatar import samples_at_side
    from kling.train.runs import recipe_config

    out, _ = shards
    samples = read_shards(out)
    half = samples_at_side(samples, 16)
    assert half[0]["frames"].shape == (9, 16, 16, 3) and np.allclose(half[0]["mouth"], samples[0]["mouth"] / 2)
    assert samples_at_side(samples, 32)[0] is samples[0]  # already at that side
    assert "sides" not in recipe_config(AvatarTrainConfig())  # recipes from before the field keep their hash
    assert recipe_config(AvatarTrainConfig(sides=(16, 32)))["sides"] == (16, 32)
    vae_meta = train_vae(out, tmp_path / "vae", VaeTrainConfig(steps=1, clip_frames=5, threads=1))
    cfg = AvatarTrainConfig(steps=6, batch=1, threads=1, checkpoint_every=6)
    seen = []
    batch = trainer.training_batch
    monkeypatch.setattr(trainer, "training_batch", lambda part, *a: seen.append(part[0]["frames"].shape[1]) or batch(part, *a))
    one = train_avatar(out, vae_meta["vae_dir"], tmp_path / "one", cfg)
    assert seen == [32] * 6
    seen.clear()
    two = train_avatar(out, vae_meta["vae_dir"], tmp_path / "two", AvatarTrainConfig(**{**cfg.__dict__, "sides": (16, 32)}))
    assert sorted(set(seen)) == [16, 32] and len(seen) == 6  # one side per batch, both drawn
    assert [h["loss"] for h in one["history"]] != [h["loss"] for h in two["history"]]
    assert json.loads((Path(two["dir"]) / "meta.json").read_text())["config"]["sides"] == [16, 32]
