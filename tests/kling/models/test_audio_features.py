"""Audio features of the paper shapes: wav2vec2 through transformers, from files in the hub's format."""

from __future__ import annotations

import pytest
import torch

from kling.models.audio import TinyAudioEncoder, Wav2Vec2Features, resolve_wav2vec2, to_frame_rate
from kling.weights import WeightsUnavailable

torch.set_num_threads(1)


def _tiny_wav2vec2(folder):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_feat_extract_layers=2,
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=12)
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(cfg)
    model.save_pretrained(str(folder), safe_serialization=True)  # config.json + model.safetensors, keys wav2vec2.*
    return model


def test_wav2vec2_loads_from_the_official_format(tmp_path):
    ref = _tiny_wav2vec2(tmp_path / "wav2vec2-base-960h")
    feats = Wav2Vec2Features(tmp_path / "wav2vec2-base-960h")
    assert torch.equal(feats.model.encoder.layers[0].attention.q_proj.weight,
                       ref.wav2vec2.encoder.layers[0].attention.q_proj.weight)
    x = torch.randn(1, 16000) * 0.1
    out = feats(x, n_frames=25)
    assert out.shape == (1, 25, 16) and torch.isfinite(out).all()


def test_wrong_checkpoint_is_refused(tmp_path):
    _tiny_wav2vec2(tmp_path / "w")
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "w" / "model.safetensors"))
    save_file({k.replace("encoder.", "enc."): v for k, v in state.items()}, str(tmp_path / "w" / "model.safetensors"))
    with pytest.raises(ValueError, match="not a wav2vec2 checkpoint"):
        Wav2Vec2Features(tmp_path / "w")


def test_missing_wav2vec2_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KLING_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="kling weights fetch wav2vec2_base_960h"):
        resolve_wav2vec2()


def test_frame_rate_and_tiny_encoder_shapes():
    assert to_frame_rate(torch.randn(2, 50, 4), 25).shape == (2, 25, 4)
    enc = TinyAudioEncoder(n_mels=40, dim=32)
    assert enc(torch.randn(2, 17 * 640) * 0.1, 17).shape == (2, 17, 32)
