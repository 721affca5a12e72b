"""Model sizes as one registry: plain data, one entry per configuration (nanoGPT / DiT style).

`tiny` trains on the demo corpus on 2 CPU cores; the Wan 2.1 entries carry the published shapes of the
diffusers-format checkpoints (Wan-AI/Wan2.1-I2V-14B / -T2V-1.3B / -FLF2V-14B-720P "-Diffusers" repos), so
the same code loads them unchanged. Only `added` fields (audio layers, tiny encoders) are ours.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Wan 2.1 VAE: published latent statistics are the class defaults of diffusers' AutoencoderKLWan.
WAN_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
               temperal_downsample=[False, True, True])


@dataclasses.dataclass(frozen=True)
class ModelSize:
    name: str
    transformer: dict[str, Any]  # WanTransformer3DModel config (in_channels = z + 4 mask + z condition)
    vae: dict[str, Any]  # AutoencoderKLWan config
    audio: dict[str, Any]  # audio features: {"kind": "logmel" | "wav2vec2", dims...}
    text: dict[str, Any]  # text features: {"kind": "tiny" | "umt5", ...}
    image: dict[str, Any]  # reference image tokens: {"kind": "vae_patches" | "clip" | "none", ...}
    frames: int  # frames per generated window (4k + 1, the VAE's temporal stride)
    size: int  # square frame side in pixels
    audio_margin: int = 2  # video frames each side a latent frame's audio window reaches (Kling-Avatar 1.0)
    weights: str | None = None  # kling weights name of the official transformer checkpoint (paper shapes)
    train_only_audio: bool = False  # frozen backbone: only the added audio layers train (MultiTalk)

    @property
    def z_dim(self) -> int:
        return int(self.vae.get("z_dim", 16))

    @property
    def temporal_stride(self) -> int:
        return 2 ** sum(bool(x) for x in self.vae.get("temperal_downsample", []))

    @property
    def spatial_stride(self) -> int:
        return 2 ** (len(self.vae.get("dim_mult", [1])) - 1)

    @property
    def inner_dim(self) -> int:
        return int(self.transformer["num_attention_heads"] * self.transformer["attention_head_dim"])

    def latent_frames(self, frames: int | None = None) -> int:
        return ((frames or self.frames) - 1) // self.temporal_stride + 1


def _wan(layers: int, heads: int, ffn: int, image: bool, flf: bool) -> dict[str, Any]:
    cfg = dict(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=128, in_channels=36 if image else 16,
               out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=ffn, num_layers=layers, cross_attn_norm=True,
               qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    if image:
        cfg.update(image_dim=1280, added_kv_proj_dim=heads * 128)
    if flf:
        cfg.update(pos_embed_seq_len=2 * 257)  # first and last image: twice CLIP's 257 tokens
    return cfg


_TINY_Z = 8
REGISTRY: dict[str, ModelSize] = {
    s.name: s
    for s in [
        ModelSize(
            name="tiny",
            transformer=dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24,
                             in_channels=2 * _TINY_Z + 4, out_channels=_TINY_Z, text_dim=32, freq_dim=32, ffn_dim=96,
                             num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                             image_dim=4 * _TINY_Z, added_kv_proj_dim=48, rope_max_seq_len=256),
            vae=dict(base_dim=16, z_dim=_TINY_Z, dim_mult=[1, 2, 2], num_res_blocks=1, attn_scales=[],
                     temperal_downsample=[True, True], latents_mean=[0.0] * _TINY_Z, latents_std=[1.0] * _TINY_Z,
                     scale_factor_temporal=4, scale_factor_spatial=4),
            audio=dict(kind="logmel", n_mels=40, dim=32, layers=2),
            text=dict(kind="tiny", dim=32, layers=1, max_len=512),
            image=dict(kind="vae_patches", patch=2),
            frames=9,  # 3 latent frames: the window the tiny VAE trains on whole (its causal cache unrolled as in use)
            size=64,
        ),
        ModelSize(
            name="wan2.1-t2v-1.3b",
            transformer=_wan(layers=30, heads=12, ffn=8960, image=False, flf=False),
            vae=dict(WAN_VAE),
            audio=dict(kind="wav2vec2", weights="wav2vec2_base_960h", dim=768),
            text=dict(kind="umt5", weights="wan21_umt5", max_len=512),
            image=dict(kind="none"),  # a text-to-video backbone reads no image tokens (the reference is a known frame)
            frames=81, size=480,
            weights="wan21_t2v_1_3b", train_only_audio=True,
        ),
        ModelSize(
            name="wan2.1-i2v-14b",
            transformer=_wan(layers=40, heads=40, ffn=13824, image=True, flf=False),
            vae=dict(WAN_VAE),
            audio=dict(kind="wav2vec2", weights="wav2vec2_base_960h", dim=768),
            text=dict(kind="umt5", weights="wan21_umt5", max_len=512),
            image=dict(kind="clip", weights="wan21_clip_vision"),
            frames=81, size=480,
            weights="wan21_i2v_14b_480p", train_only_audio=True,
        ),
        ModelSize(
            name="wan2.1-flf2v-14b",
            transformer=_wan(layers=40, heads=40, ffn=13824, image=True, flf=True),
            vae=dict(WAN_VAE),
            audio=dict(kind="wav2vec2", weights="wav2vec2_base_960h", dim=768),
            text=dict(kind="umt5", weights="wan21_umt5", max_len=512),
            image=dict(kind="clip", weights="wan21_clip_vision", images=2),  # first and last image tokens
            frames=81, size=720,
            weights="wan21_flf2v_14b_720p", train_only_audio=True,
        ),
    ]
}


def get_size(name: str) -> ModelSize:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model size {name!r}; known: {', '.join(REGISTRY)}") from None


@dataclasses.dataclass(frozen=True)
class SuperResolutionSize:
    """The cascade's video super-resolution network (kling.models.super_resolution)."""
    name: str
    channels: int
    blocks: int  # residual blocks at the low resolution
    temporal_layers: int  # the first blocks see one frame each side: the output of a frame depends on this many each side
    scale: int  # output side / input side
    frames: int = 5  # frames per training window


SUPER_RESOLUTION: dict[str, SuperResolutionSize] = {
    s.name: s for s in [SuperResolutionSize(name="tiny", channels=24, blocks=3, temporal_layers=2, scale=2)]
}


def get_super_resolution_size(name: str) -> SuperResolutionSize:
    try:
        return SUPER_RESOLUTION[name]
    except KeyError:
        raise KeyError(f"unknown super-resolution size {name!r}; known: {', '.join(SUPER_RESOLUTION)}") from None
