"""The avatar model: diffusers' WanTransformer3DModel with audio cross-attention after each block's text
cross-attention, conditioned through one masked-frames input (Wan I2V / FLF), reference image tokens,
text embeddings and per-video-frame audio tokens.

The Wan transformer is used unchanged (its weights load from official diffusers-format checkpoints key for
key); the audio layers live beside it and join each block through two forward hooks: one keeps the state the
text cross-attention reads (the input of the block's `norm2`, after self-attention), the other adds
`audio_attn(h)` to the text cross-attention's output, so the block computes h <- h + text_attn(h);
h <- h + audio_attn(h) before its feed-forward, as MultiTalk's blocks do.

The paper shapes read their text, audio and reference image through pretrained, frozen encoders (umT5,
wav2vec2, CLIP vision: `PretrainedEncoders`, loaded with the backbone by kling.models.checkpoint); `tiny`
trains small encoders of its own. Either way the model's conditioning methods (`text_embeddings`,
`audio_tokens`, `image_tokens`) are the one place that turns inputs into tokens.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
from diffusers import WanTransformer3DModel
from torch import nn

from kling.models.audio import TinyAudioEncoder
from kling.models.audio_attention import AudioCrossAttention, audio_window_mask
from kling.models.registry import ModelSize
from kling.models.text import TinyTextEncoder


def expand_input_channels(transformer: WanTransformer3DModel, in_channels: int) -> bool:
    """Give a text-to-video backbone the mask + condition input channels, zero-initialised (it starts as before).
    True when it did (the input layer then trains, even on a frozen backbone: nothing else reads those channels)."""
    old = transformer.patch_embedding
    if old.in_channels >= in_channels:
        return False
    new = nn.Conv3d(in_channels, old.out_channels, kernel_size=old.kernel_size, stride=old.stride)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    transformer.patch_embedding = new
    transformer.register_to_config(in_channels=in_channels)
    return True


def patch_tokens(latent: torch.Tensor, patch: int = 2) -> torch.Tensor:
    """(B, z, 1, h, w) reference latent -> (B, h/p * w/p, z*p*p) image tokens."""
    b, z, _, h, w = latent.shape
    x = latent[:, :, 0].unfold(2, patch, patch).unfold(3, patch, patch)  # (B, z, h/p, w/p, p, p)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(b, (h // patch) * (w // patch), z * patch * patch)


@dataclasses.dataclass
class PretrainedEncoders:
    """The paper shapes' frozen encoders, from their official files. Kept outside the module's parameters: they
    never train and never enter our checkpoints (their own files are their weights)."""
    text: Callable[[list[str]], torch.Tensor] | None = None  # umT5 (kling.models.text.UMT5Embedder)
    audio: Callable[[torch.Tensor, int], torch.Tensor] | None = None  # wav2vec2 (kling.models.audio.Wav2Vec2Features)
    image: Callable[[np.ndarray], torch.Tensor] | None = None  # CLIP vision (kling.models.image.ClipImageTokens)


class AvatarModel(nn.Module):
    def __init__(self, size: ModelSize, transformer: WanTransformer3DModel | None = None,
                 encoders: PretrainedEncoders | None = None):
        super().__init__()
        self.size = size
        self.transformer = transformer if transformer is not None else WanTransformer3DModel(**size.transformer)
        self.expanded_input = expand_input_channels(self.transformer, 2 * size.z_dim + size.temporal_stride)
        self.encoders = encoders or PretrainedEncoders()
        cfg = self.transformer.config
        dim, heads = cfg.num_attention_heads * cfg.attention_head_dim, cfg.num_attention_heads
        audio_dim = int(size.audio["dim"])
        self.audio_encoder = TinyAudioEncoder(size.audio["n_mels"], audio_dim, size.audio.get("layers", 2)) \
            if size.audio["kind"] == "logmel" else None
        self.text_encoder = TinyTextEncoder(size.text["dim"], size.text.get("layers", 1), size.text.get("max_len", 512)) \
            if size.text["kind"] == "tiny" else None
        self.null_audio = nn.Parameter(torch.zeros(audio_dim))
        # the tiny audio encoder's lip head: in training it reads each frame's mouth opening off the audio token
        # (kling.train.avatar.lip_loss), so the encoder learns what in the audio moves the mouth
        self.lip_head = nn.Linear(audio_dim, 1) if self.audio_encoder is not None else None
        # zero output projections only where the layers join a trained backbone (see kling.models.audio_attention)
        self.audio_layers = nn.ModuleList(AudioCrossAttention(dim, audio_dim, heads, zero_out=size.weights is not None)
                                          for _ in self.transformer.blocks)
        self._ctx: tuple | None = None
        self._state: list[torch.Tensor | None] = [None] * len(self.audio_layers)
        for i, block in enumerate(self.transformer.blocks):
            block.norm2.register_forward_pre_hook(self._keep_state(i))
            block.attn2.register_forward_hook(self._add_audio(i))

    # -- hooks -------------------------------------------------------------------------------------
    def _keep_state(self, i: int):
        def hook(module, args):
            self._state[i] = args[0]
        return hook

    def _add_audio(self, i: int):
        def hook(module, args, output):
            if self._ctx is None:
                return output
            audio, mask, per_frame = self._ctx
            h = (self._state[i] + output).to(output.dtype)  # the block's state after text cross-attention
            return output + self.audio_layers[i](h, audio, mask, per_frame).to(output.dtype)
        return hook

    # -- conditioning ------------------------------------------------------------------------------
    def audio_tokens(self, samples: torch.Tensor | None, n_frames: int, batch: int, drop: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) 16 kHz waveform -> (B, n_frames, audio_dim) (the tiny encoder's, or wav2vec2's features);
        None or drop[b] = True gives the learned null audio (classifier-free guidance)."""
        null = self.null_audio.expand(batch, n_frames, -1)
        if samples is None:
            return null
        encoder = self.audio_encoder if self.audio_encoder is not None else self._pretrained("audio")
        tokens = encoder(samples, n_frames).to(null.dtype)
        if drop is not None:
            tokens = torch.where(drop.to(tokens.device)[:, None, None], null, tokens)
        return tokens

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        if self.text_encoder is not None:
            return self.text_encoder(texts)
        return self._pretrained("text")(texts)

    def image_tokens(self, faces: np.ndarray, latents: torch.Tensor | None = None) -> torch.Tensor | None:
        """Reference image tokens of framed faces (B, side, side, 3) uint8: patches of their VAE latents `latents`
        (B, z, 1, h, w) for `tiny`; CLIP's penultimate states for Wan I2V shapes (the FLF2V model reads two images,
        here the reference twice, rows 2b and 2b + 1 as diffusers stacks them); None for a text-to-video backbone."""
        kind = self.size.image["kind"]
        if kind == "vae_patches":
            return patch_tokens(latents, self.size.image.get("patch", 2))
        if kind == "none":
            return None
        return self._pretrained("image")(np.repeat(faces, self.size.image.get("images", 1), axis=0))

    def _pretrained(self, what: str) -> Callable:
        encoder = getattr(self.encoders, what)
        if encoder is None:
            spec = getattr(self.size, what)
            raise RuntimeError(f"{self.size.name}: its {what} features come from the pretrained {spec['kind']} "
                               f"encoder ({spec.get('weights')}); build the model with "
                               "kling.models.checkpoint.avatar_from_official, which loads it")
        return encoder

    # -- denoiser ----------------------------------------------------------------------------------
    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, condition: torch.Tensor, text: torch.Tensor,
                image_tokens: torch.Tensor | None, audio: torch.Tensor) -> torch.Tensor:
        """noisy (B, z, F, h, w); condition (B, stride + z, F, h, w) -> flow velocity (B, z, F, h, w)."""
        _, _, f, h, w = noisy.shape
        p = self.transformer.config.patch_size
        per_frame = (h // p[1]) * (w // p[2])
        mask = audio_window_mask(f, audio.shape[1], self.size.temporal_stride, self.size.audio_margin)
        self._ctx = (audio, mask, per_frame)
        try:
            x = torch.cat([noisy, condition.to(noisy.dtype)], dim=1)
            return self.transformer(x, timestep, text, encoder_hidden_states_image=image_tokens, return_dict=False)[0]
        finally:
            self._ctx = None
            self._state = [None] * len(self.audio_layers)

    def trainable_parameters(self):
        """All weights for `tiny`; on a frozen official backbone (MultiTalk) only the added audio layers (and the
        input layer, when it was widened for the mask and condition channels)."""
        if self.size.train_only_audio:
            self.transformer.requires_grad_(False)
            self.transformer.patch_embedding.requires_grad_(self.expanded_input)
        return [p for p in self.parameters() if p.requires_grad]

    def _in_checkpoint(self, key: str) -> bool:
        """Whether our checkpoints hold this weight: all of `tiny`; on a frozen backbone only what trains (the
        official files hold the rest)."""
        if not self.size.train_only_audio or not key.startswith("transformer."):
            return True
        return self.expanded_input and key.startswith("transformer.patch_embedding.")

    def checkpoint_keys(self) -> list[str]:
        return [k for k in self.state_dict() if self._in_checkpoint(k)]

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if self._in_checkpoint(k)}

    def load_checkpoint_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load `checkpoint_state` tensors; exactly those keys, or ValueError (another size or backbone's)."""
        want = set(self.checkpoint_keys())
        if set(tensors) != want:
            extra, lacking = sorted(set(tensors) - want), sorted(want - set(tensors))
            raise ValueError(f"checkpoint does not fit {self.size.name}: unexpected {extra[:3]}, missing {lacking[:3]}")
        self.load_state_dict(tensors, strict=False)
