"""The paper shapes end to end on miniature official folders: the backbone and its frozen encoders (umT5, CLIP
vision, wav2vec2) load from the published layouts, only the added layers train and enter our checkpoints,
training resumes exactly, and a trained checkpoint generates on its official backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import WanTransformer3DModel

from kling.generate.avatar_pipeline import AvatarPipeline, GenerateConfig, load_checkpoint
from kling.models.checkpoint import checkpoint_hash, load_tensors, new_avatar_model
from kling.models.registry import REGISTRY
from kling.train.avatar import AvatarTrainConfig, train_avatar
from kling.train.avatar_shards import ShardConfig, write_shards
from tests.support.avatar import demo_clip_with_tracks, demo_frames
from tests.support.paper_weights import MINI_I2V, MINI_T2V, REPO, T2V_REPO, make_paper_weights

torch.set_num_threads(1)
BOX = (80, 60, 176, 180)  # the face box of the demo frame (256 px): skips detection


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    make_paper_weights(root)
    return root


@pytest.fixture
def paper(weights, monkeypatch):
    monkeypatch.setenv("KLING_WEIGHTS", str(weights))
    for size in (MINI_I2V, MINI_T2V):
        monkeypatch.setitem(REGISTRY, size.name, size)
    return weights, MINI_I2V


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    bo, bo_tracks = demo_clip_with_tracks(folder, "bo_talk", 0.8)
    out = tmp_path_factory.mktemp("shards")
    write_shards([("bo_talk-s0-t0", "bo_talk", bo, bo_tracks)], out, held_out=set(),
                 cfg=ShardConfig(frames=9, stride=8, side=32, samples_per_shard=2))
    return out


def test_backbone_and_encoders_load_from_the_official_layouts(paper):
    root, size = paper
    model = new_avatar_model(size.name)
    official = WanTransformer3DModel.from_pretrained(str(root / REPO / "transformer"))
    for (k, a), (_, b) in zip(official.state_dict().items(), model.transformer.state_dict().items()):
        assert torch.equal(a, b), k
    text = model.text_embeddings(["a person talks", ""])
    assert text.shape == (2, 512, 32)
    assert text[0, :4].abs().sum() > 0 and text[0, 4:].eq(0).all()  # 3 pieces + </s>, zero past them as Wan pads
    assert text[1, 1:].eq(0).all()
    audio = model.audio_tokens(torch.randn(1, 9 * 640) * 0.1, 9, 1)
    assert audio.shape == (1, 9, 16) and not torch.equal(audio, model.audio_tokens(None, 9, 1))
    faces = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    image = model.image_tokens(faces)
    assert image.shape == (2, 17, 16) and not torch.equal(image[0], image[1])  # CLS + 16 patches, penultimate layer


def test_the_first_last_frame_shape_reads_two_images_per_sample(paper):
    """Wan FLF2V's image embedder folds two images' tokens into one sequence per sample (diffusers stacks them on
    the batch axis, rows 2b and 2b + 1): the reference twice, for every sample of a batch."""
    import dataclasses

    from kling.models.avatar import AvatarModel
    from kling.models.checkpoint import load_encoders

    _, i2v = paper
    tokens = 17  # CLS + 16 patches of the miniature CLIP
    flf = dataclasses.replace(i2v, name="mini-flf2v", image=dict(i2v.image, images=2),
                              transformer=dict(i2v.transformer, pos_embed_seq_len=2 * tokens))
    model = AvatarModel(flf, encoders=load_encoders(flf))
    faces = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    image = model.image_tokens(faces)
    assert image.shape == (4, tokens, 16) and torch.equal(image[0], image[1]) and not torch.equal(image[1], image[2])
    f, hw = flf.latent_frames(), flf.size // flf.spatial_stride
    out = model(torch.randn(2, flf.z_dim, f, hw, hw), torch.full((2,), 500.0),
                torch.randn(2, flf.temporal_stride + flf.z_dim, f, hw, hw), model.text_embeddings(["a", "b"]), image,
                model.audio_tokens(torch.randn(2, 9 * 640) * 0.1, 9, 2))
    assert out.shape == (2, flf.z_dim, f, hw, hw) and torch.isfinite(out).all()


def test_missing_encoder_names_its_fetch_command(paper, tmp_path, monkeypatch):
    import shutil

    root, size = paper
    partial = tmp_path / "weights"
    shutil.copytree(root, partial)
    shutil.rmtree(partial / REPO / "text_encoder")
    monkeypatch.setenv("KLING_WEIGHTS", str(partial))
    from kling.weights import WeightsUnavailable

    with pytest.raises(WeightsUnavailable, match="kling weights fetch wan21_umt5"):
        new_avatar_model(size.name)


@pytest.mark.parametrize("size", [MINI_I2V, MINI_T2V], ids=["i2v", "t2v"])
def test_only_the_added_layers_train_and_resume_exactly(paper, shards, tmp_path, size):
    root, _ = paper
    vae = root / REPO / "vae"
    cfg = AvatarTrainConfig(size=size.name, steps=4, batch=2, checkpoint_every=2, lr=1e-3, warmup=1)
    straight = train_avatar(shards, vae, tmp_path / "straight", cfg)
    train_avatar(shards, vae, tmp_path / "resumed", AvatarTrainConfig(**{**cfg.__dict__, "steps": 2}))
    resumed = train_avatar(shards, vae, tmp_path / "resumed", cfg)
    a, b = (load_tensors(f"{m['dir']}/ema.safetensors") for m in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    saved = load_tensors(f"{straight['dir']}/model.safetensors")
    # the backbone stays in its own files; a text-to-video one's input layer, widened for the masks, trains
    widened = ["transformer.patch_embedding.bias", "transformer.patch_embedding.weight"] if size is MINI_T2V else []
    assert sorted(k for k in saved if k.startswith("transformer.")) == widened
    assert any(k.startswith("audio_layers.") for k in saved) and "null_audio" in saved
    assert saved["audio_layers.0.to_out.weight"].abs().sum() > 0  # zero at the start: it trained

    ckpt = load_checkpoint(tmp_path / "straight")
    official = WanTransformer3DModel.from_pretrained(str(root / (T2V_REPO if size is MINI_T2V else REPO) / "transformer"))
    assert torch.equal(ckpt.model.transformer.blocks[0].attn1.to_q.weight, official.blocks[0].attn1.to_q.weight)
    assert ckpt.sha256 != checkpoint_hash(ckpt.folder)  # the backbone's file is part of its identity

    frames, audio = demo_frames("bo_talk", 0.5)
    pipe = AvatarPipeline(ckpt)
    cfg_gen = GenerateConfig(steps=2, seed=3)
    out, info = pipe(frames[0], audio, "a person talks", config=cfg_gen, window_box=BOX)
    again, _ = pipe(frames[0], audio, "a person talks", config=cfg_gen, window_box=BOX)
    assert out.shape == (info["frames"], *frames[0].shape) and np.array_equal(out, again)
    silent, _ = pipe(frames[0], np.zeros_like(audio), "a person talks", config=cfg_gen,
                     window_box=BOX)
    assert not np.array_equal(out, silent)  # the trained audio layers reach the frames
