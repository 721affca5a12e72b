"""Miniature official weight folders, in exactly the published layouts, for the paper shapes' loading code.

`Wan2.1-I2V-14B-480P-Diffusers/` as diffusers publishes it (transformer/ sharded with its index JSON, vae/,
text_encoder/ (umT5, sharded) + tokenizer/, image_encoder/ (CLIP vision) + image_processor/) and
`wav2vec2-base-960h/` (a Wav2Vec2ForCTC save), each with random weights at toy shapes, and `MINI_I2V`: the
I2V-14B registry entry at those shapes; `MINI_T2V` likewise for the T2V-1.3B transformer (no image input, the
mask and condition channels added). Nothing official is downloaded: the loaders see the same files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from kling.models.registry import ModelSize, get_size

REPO = "Wan2.1-I2V-14B-480P-Diffusers"
T2V_REPO = "Wan2.1-T2V-1.3B-Diffusers"  # its transformer only: the encoders are the I2V repo's (the same umT5)
TEXT_DIM, IMAGE_DIM, AUDIO_DIM = 32, 16, 16


def _mini_i2v() -> ModelSize:
    tiny, paper = get_size("tiny"), get_size("wan2.1-i2v-14b")
    return dataclasses.replace(paper, name="mini-i2v", vae=dict(tiny.vae), frames=9, size=32,
                               transformer=dict(tiny.transformer, text_dim=TEXT_DIM, image_dim=IMAGE_DIM),
                               audio=dict(paper.audio, dim=AUDIO_DIM))


def _mini_t2v() -> ModelSize:
    tiny, paper = get_size("tiny"), get_size("wan2.1-t2v-1.3b")
    transformer = {k: v for k, v in tiny.transformer.items() if k not in ("image_dim", "added_kv_proj_dim")}
    return dataclasses.replace(paper, name="mini-t2v", vae=dict(tiny.vae), frames=9, size=32,
                               transformer=dict(transformer, text_dim=TEXT_DIM, in_channels=tiny.z_dim),
                               audio=dict(paper.audio, dim=AUDIO_DIM))


MINI_I2V, MINI_T2V = _mini_i2v(), _mini_t2v()


def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -3.0) for c in "▁abcdefghijklmnopqrstuvwxyz"]
    pieces += [("▁" + w, -1.0) for w in ("a", "the", "person", "talks", "smiles")]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                    extra_ids=0).save_pretrained(str(folder))


def make_paper_weights(root: Path, seed: int = 0) -> None:
    """Write the miniature official folders under `root` (a $KLING_WEIGHTS)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel,
                              Wav2Vec2Config, Wav2Vec2ForCTC)

    torch.manual_seed(seed)
    repo = root / REPO
    WanTransformer3DModel(**MINI_I2V.transformer).save_pretrained(str(repo / "transformer"), max_shard_size="100KB")
    WanTransformer3DModel(**MINI_T2V.transformer).save_pretrained(str(root / T2V_REPO / "transformer"))
    AutoencoderKLWan(**MINI_I2V.vae).save_pretrained(str(repo / "vae"))
    UMT5EncoderModel(UMT5Config(vocab_size=40, d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
                                relative_attention_num_buckets=8, relative_attention_max_distance=16)
                     ).save_pretrained(str(repo / "text_encoder"), max_shard_size="20KB")
    _tokenizer(repo / "tokenizer")
    CLIPVisionModel(CLIPVisionConfig(hidden_size=IMAGE_DIM, intermediate_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, image_size=32, patch_size=8)
                    ).save_pretrained(str(repo / "image_encoder"))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
                       ).save_pretrained(str(repo / "image_processor"))
    Wav2Vec2ForCTC(Wav2Vec2Config(hidden_size=AUDIO_DIM, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
                                  num_feat_extract_layers=2, num_conv_pos_embeddings=8,
                                  num_conv_pos_embedding_groups=2, vocab_size=12)
                   ).save_pretrained(str(root / "wav2vec2-base-960h"))
