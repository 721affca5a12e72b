"""The avatar model: diffusers' WanTransformer3DModel with audio cross-attention after each block's text
cross-attention, conditioned through one masked-frames input (Wan I2V / FLF), reference image tokens,
text embeddings and per-video-frame audio tokens.

The Wan transformer is used unchanged (its weights load from official diffusers-format checkpoints key for
key); the audio layers live beside it and join each block through two forward hooks: one keeps the state the
text cross-attention reads (the input of the block's `norm2`, after self-attention), the other adds
`audio_attn(h)` to the text cross-attention's output, so the block computes h <- h + text_attn(h);
h <- h + audio_attn(h) before its feed-forward, as MultiTalk's blocks do.
"""

from __future__ import annotations

import torch
from diffusers import WanTransformer3DModel
from torch import nn

from kling.models.audio import TinyAudioEncoder
from kling.models.audio_attention import AudioCrossAttention, audio_window_mask
from kling.models.registry import ModelSize
from kling.models.text import TinyTextEncoder


def expand_input_channels(transformer: WanTransformer3DModel, in_channels: int) -> None:
    """Give a text-to-video backbone the mask + condition input channels, zero-initialised (it starts as before)."""
    old = transformer.patch_embedding
    if old.in_channels >= in_channels:
        return
    new = nn.Conv3d(in_channels, old.out_channels, kernel_size=old.kernel_size, stride=old.stride)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    transformer.patch_embedding = new
    transformer.register_to_config(in_channels=in_channels)


def patch_tokens(latent: torch.Tensor, patch: int = 2) -> torch.Tensor:
    """(B, z, 1, h, w) reference latent -> (B, h/p * w/p, z*p*p) image tokens."""
    b, z, _, h, w = latent.shape
    x = latent[:, :, 0].unfold(2, patch, patch).unfold(3, patch, patch)  # (B, z, h/p, w/p, p, p)
    return x.permute(0, 2, 3, 1, 4, 5).reshape(b, (h // patch) * (w // patch), z * patch * patch)


class AvatarModel(nn.Module):
    def __init__(self, size: ModelSize, transformer: WanTransformer3DModel | None = None):
        super().__init__()
        self.size = size
        self.transformer = transformer if transformer is not None else WanTransformer3DModel(**size.transformer)
        expand_input_channels(self.transformer, 2 * size.z_dim + size.temporal_stride)
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
        """(B, S) 16 kHz waveform (or features (B, T, C) for the paper shapes) -> (B, n_frames, audio_dim);
        None or drop[b] = True gives the learned null audio (classifier-free guidance)."""
        null = self.null_audio.expand(batch, n_frames, -1)
        if samples is None:
            return null
        tokens = self.audio_encoder(samples, n_frames) if self.audio_encoder is not None else samples
        if drop is not None:
            tokens = torch.where(drop.to(tokens.device)[:, None, None], null, tokens)
        return tokens

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        if self.text_encoder is None:
            raise RuntimeError(f"{self.size.name}: text embeddings come from umT5 (kling.models.text.UMT5Embedder)")
        return self.text_encoder(texts)

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
        """All weights for `tiny`; only the added audio layers on a frozen official backbone (MultiTalk)."""
        if not self.size.train_only_audio:
            return [p for p in self.parameters() if p.requires_grad]
        self.transformer.requires_grad_(False)
        return list(self.audio_layers.parameters()) + [self.null_audio]
