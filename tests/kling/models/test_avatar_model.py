"""The avatar model: tiny forward/backward, conditioning masks, audio window, official-format loading."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from diffusers import WanTransformer3DModel

from kling.models.audio import log_mel, mel_filterbank
from kling.models.audio_attention import audio_window_mask, latent_frame_span
from kling.models.avatar import AvatarModel, patch_tokens
from kling.models.checkpoint import INDEX, avatar_from_official, load_wan_transformer
from kling.models.conditioning import known_frames, mask_channels
from kling.models.registry import REGISTRY, get_size
from kling.weights import WeightsUnavailable

torch.set_num_threads(1)


def _inputs(model, b=1, frames=9, size=32):
    s = model.size
    f, hw = s.latent_frames(frames), size // s.spatial_stride
    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(b, s.z_dim, f, hw, hw, generator=g)
    cond = torch.randn(b, s.temporal_stride + s.z_dim, f, hw, hw, generator=g)
    text = model.text_embeddings(["a person talks"] * b)
    image = patch_tokens(torch.randn(b, s.z_dim, 1, hw, hw, generator=g))
    audio = model.audio_tokens(torch.randn(b, frames * 640, generator=g) * 0.1, frames, b)
    return noisy, torch.full((b,), 500.0), cond, text, image, audio


def test_registry_shapes():
    tiny = get_size("tiny")
    assert tiny.temporal_stride == 4 and tiny.spatial_stride == 4 and tiny.latent_frames() == 3  # 9 frames
    assert tiny.transformer["in_channels"] == 2 * tiny.z_dim + tiny.temporal_stride
    flf = get_size("wan2.1-flf2v-14b")
    assert flf.transformer["in_channels"] == 36 and flf.transformer["pos_embed_seq_len"] == 514
    assert flf.inner_dim == 5120 and get_size("wan2.1-t2v-1.3b").inner_dim == 1536
    with pytest.raises(KeyError):
        get_size("huge")


def test_masks_fold_like_wan():
    k = known_frames("first_last", 9)
    assert k.tolist() == [True] + [False] * 7 + [True]
    m = mask_channels(k, 4, 2, 2)
    assert m.shape == (4, 3, 2, 2)
    assert m[:, 0].eq(1).all() and m[:, 1].eq(0).all() and m[:, 2, 0, 0].tolist() == [0, 0, 0, 1]
    assert known_frames("context:2", 9).tolist() == [True, True] + [False] * 5 + [True, True]
    assert not known_frames("none", 9).any()
    with pytest.raises(ValueError):
        known_frames("middle", 9)


def test_audio_window_is_time_aligned():
    assert latent_frame_span(0, 4) == (0, 0) and latent_frame_span(2, 4) == (5, 8)
    m = audio_window_mask(3, 9, 4, margin=1)
    assert m[0].nonzero().flatten().tolist() == [0, 1]
    assert m[2].nonzero().flatten().tolist() == [4, 5, 6, 7, 8]


def test_log_mel_without_torchaudio():
    fb = mel_filterbank(40)
    assert fb.shape == (40, 257) and (fb.sum(1) > 0).all()
    t = torch.arange(16000) / 16000
    mel = log_mel(torch.sin(2 * np.pi * 1000 * t))
    assert mel.shape == (1, 40, 100)
    peak = mel[0, :, 50].argmax().item()
    centres = np.argmax(fb, axis=1) * 16000 / 512
    assert abs(centres[peak] - 1000) < 150  # the 1 kHz tone lands in the band around 1 kHz


def test_forward_backward_audio_reaches_the_audio_encoder():
    torch.manual_seed(0)
    model = AvatarModel(get_size("tiny"))
    noisy, t, cond, text, image, audio = _inputs(model)
    out = model(noisy, t, cond, text, image, audio)
    assert out.shape == noisy.shape
    # trained from scratch, the audio layers start live: other audio changes the prediction at initialisation,
    # and the loss's gradient reaches the audio encoder's first layer (a zero output projection would block it)
    other = model.audio_tokens(None, audio.shape[1], 1)
    assert not torch.allclose(model(noisy, t, cond, text, image, other), out)
    out.pow(2).mean().backward()
    assert model.audio_layers[0].to_out.weight.grad.abs().sum() > 0
    assert model.audio_encoder.convs[0].weight.grad.abs().sum() > 0


def test_audio_layers_join_a_trained_backbone_silently():
    """On official weights (paper shapes) the added layers start at zero: the backbone computes what it did."""
    torch.manual_seed(0)
    model = AvatarModel(dataclasses.replace(get_size("tiny"), weights="a_trained_backbone"))
    noisy, t, cond, text, image, audio = _inputs(model)
    other = model.audio_tokens(None, audio.shape[1], 1)
    assert torch.equal(model(noisy, t, cond, text, image, other), model(noisy, t, cond, text, image, audio))
    with torch.no_grad():
        for layer in model.audio_layers:
            layer.to_out.weight.normal_(0, 0.5)
    assert not torch.allclose(model(noisy, t, cond, text, image, other), model(noisy, t, cond, text, image, audio))


def test_audio_layer_reads_the_state_after_text_cross_attention():
    """The hook's state is the block's own: self-attention's output plus the text cross-attention's, as the block
    itself adds them before its feed-forward."""
    torch.manual_seed(0)
    model = AvatarModel(get_size("tiny"))
    noisy, t, cond, text, image, audio = _inputs(model)
    block, seen = model.transformer.blocks[0], {}
    # registered after the model's own hook: sees text + audio, what the block adds to its state
    block.attn2.register_forward_hook(lambda m, a, o: seen.update(attn2_out=o))
    block.norm3.register_forward_pre_hook(lambda m, a: seen.update(before_ffn=a[0]))
    model.audio_layers[0].register_forward_hook(lambda m, a, o: seen.update(audio_in=a[0], audio_out=o))
    block.norm2.register_forward_pre_hook(lambda m, a: seen.update(after_self=a[0]))
    model(noisy, t, cond, text, image, audio)
    text_out = seen["attn2_out"] - seen["audio_out"]
    assert torch.allclose(seen["audio_in"], seen["after_self"] + text_out, atol=1e-5)
    assert torch.allclose(seen["before_ffn"], seen["after_self"] + text_out + seen["audio_out"], atol=1e-5)


def test_audio_only_reaches_its_frames():
    torch.manual_seed(0)
    model = AvatarModel(get_size("tiny"))
    with torch.no_grad():
        for layer in model.audio_layers:
            layer.to_out.weight.normal_(0, 0.5)
    noisy, t, cond, text, image, audio = _inputs(model, frames=17)
    # one block: after its audio layer only per-token maps follow, so the output shows the layer's reach
    model.transformer.blocks = model.transformer.blocks[:1]
    base = model(noisy, t, cond, text, image, audio)
    changed = audio.clone()
    changed[:, 14] += 5.0  # video frame 14: latent 3 (frames 9-12, margin 2) and latent 4 (frames 13-16)
    diff = (model(noisy, t, cond, text, image, changed) - base).abs().sum(dim=(0, 1, 3, 4))
    assert diff[:3].eq(0).all() and diff[3] > 0 and diff[4] > 0


def _sharded_checkpoint(folder, size):
    cfg = dict(size.transformer)
    model = WanTransformer3DModel(**cfg)
    model.save_pretrained(str(folder), max_shard_size="100KB", safe_serialization=True)
    return model


def test_official_sharded_checkpoint_loads_unchanged(tmp_path):
    size = get_size("tiny")
    torch.manual_seed(1)
    ref = _sharded_checkpoint(tmp_path / "transformer", size)
    index = json.loads((tmp_path / "transformer" / INDEX).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 2 and all(s.startswith("diffusion_pytorch_model-0000") for s in shards)
    loaded = load_wan_transformer(tmp_path / "transformer")
    for (k, a), (k2, b) in zip(ref.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    model = avatar_from_official(size, tmp_path / "transformer")
    assert model.transformer.blocks[0].attn1.to_q.weight.data_ptr() == loaded.blocks[0].attn1.to_q.weight.data_ptr() or \
        torch.equal(model.transformer.blocks[0].attn1.to_q.weight, ref.blocks[0].attn1.to_q.weight)


def test_text_to_video_backbone_gets_zero_mask_channels(tmp_path):
    size = get_size("tiny")
    cfg = dict(size.transformer, in_channels=size.z_dim)
    WanTransformer3DModel(**cfg).save_pretrained(str(tmp_path / "t2v"))
    model = avatar_from_official(size, tmp_path / "t2v")
    w = model.transformer.patch_embedding.weight
    assert w.shape[1] == 2 * size.z_dim + 4 and w[:, size.z_dim:].eq(0).all()


def test_missing_shard_names_the_fetch_command(tmp_path):
    size = get_size("tiny")
    _sharded_checkpoint(tmp_path / "transformer", size)
    shard = sorted((tmp_path / "transformer").glob("diffusion_pytorch_model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(WeightsUnavailable, match="shards missing"):
        load_wan_transformer(tmp_path / "transformer", "wan21_flf2v_14b_720p")
    with pytest.raises(WeightsUnavailable, match="kling weights fetch wan21_flf2v_14b_720p"):
        load_wan_transformer(tmp_path / "transformer", "wan21_flf2v_14b_720p")


def test_paper_profile_without_weights_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("KLING_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="kling weights fetch"):
        avatar_from_official("wan2.1-flf2v-14b")
    assert all(s.weights for n, s in REGISTRY.items() if n != "tiny")
