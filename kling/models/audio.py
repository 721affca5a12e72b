"""Audio features, one token per video frame.

`tiny`: log-mel computed with torch.stft (no torchaudio) at 100 frames/s (4 per 25 fps video frame), then a
small trained 1-D conv encoder that pools each video frame's 4 mel frames into one token.
Paper shapes: wav2vec2 encoder features through transformers (weights via `kling weights`), resampled to
the video frame rate by linear interpolation, as audio-driven Wan models do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kling.clock import FPS, SAMPLE_RATE

HOP = SAMPLE_RATE // 100  # 10 ms hop: 4 mel frames per video frame at 25 fps
WIN = 400  # 25 ms window
MEL_PER_FRAME = int(round(SAMPLE_RATE / FPS)) // HOP


def mel_filterbank(n_mels: int, n_fft: int = 512, sample_rate: int = SAMPLE_RATE, fmin: float = 20.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular HTK-mel filters, (n_mels, n_fft // 2 + 1)."""
    fmax = fmax or sample_rate / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return fb.astype(np.float32)


def log_mel(samples: torch.Tensor, n_mels: int = 40, n_fft: int = 512) -> torch.Tensor:
    """(B, S) float waveform at 16 kHz -> (B, n_mels, S // HOP) log-mel (natural log, floor 1e-5)."""
    if samples.ndim == 1:
        samples = samples[None]
    spec = torch.stft(samples.float(), n_fft=n_fft, hop_length=HOP, win_length=WIN,
                      window=torch.hann_window(WIN, device=samples.device), center=True, return_complex=True)
    power = spec.abs().pow(2)
    fb = torch.from_numpy(mel_filterbank(n_mels, n_fft)).to(power)
    mel = torch.einsum("mf,bft->bmt", fb, power)
    return torch.log(mel.clamp_min(1e-5))[..., : samples.shape[-1] // HOP]


class TinyAudioEncoder(nn.Module):
    """log-mel (B, n_mels, 4T) -> (B, T, dim): convs over time, then each video frame's 4 mel frames pooled."""

    def __init__(self, n_mels: int = 40, dim: int = 32, layers: int = 2):
        super().__init__()
        self.n_mels = n_mels
        convs, c = [], n_mels
        for _ in range(layers):
            convs += [nn.Conv1d(c, dim, kernel_size=5, padding=2), nn.GELU()]
            c = dim
        self.convs = nn.Sequential(*convs)
        self.norm = nn.LayerNorm(dim)

    def forward(self, samples: torch.Tensor, n_frames: int) -> torch.Tensor:
        mel = log_mel(samples, self.n_mels)
        mel = (mel + 5.0) / 5.0  # keep the log range near unit scale
        need = n_frames * MEL_PER_FRAME
        mel = F.pad(mel, (0, max(0, need - mel.shape[-1])))[..., :need]
        h = self.convs(mel)  # (B, dim, 4T)
        h = h.unflatten(-1, (n_frames, MEL_PER_FRAME)).mean(-1).transpose(1, 2)
        return self.norm(h)


def to_frame_rate(features: torch.Tensor, n_frames: int) -> torch.Tensor:
    """(B, L, C) features at their own rate -> (B, n_frames, C), linear interpolation over time."""
    return F.interpolate(features.transpose(1, 2), size=n_frames, mode="linear", align_corners=False).transpose(1, 2)


class Wav2Vec2Features(nn.Module):
    """Frozen wav2vec2 encoder (transformers) from a folder in the hub's format (config.json + model.safetensors).

    A checkpoint saved from Wav2Vec2ForCTC carries the encoder under `wav2vec2.`; that prefix is stripped.
    """

    def __init__(self, folder: str | Path):
        super().__init__()
        from safetensors.torch import load_file
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        folder = Path(folder)
        config = Wav2Vec2Config(**json.loads((folder / "config.json").read_text()))
        self.model = Wav2Vec2Model(config)
        state = load_file(str(folder / "model.safetensors"))
        state = {k.removeprefix("wav2vec2."): v for k, v in state.items() if not k.startswith("lm_head.")}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [k for k in missing if "masked_spec_embed" not in k]
        if missing or unexpected:
            raise ValueError(f"{folder}: not a wav2vec2 checkpoint (missing {missing[:3]}, unexpected {unexpected[:3]})")
        self.model.eval().requires_grad_(False)
        self.dim = config.hidden_size

    @torch.no_grad()
    def forward(self, samples: torch.Tensor, n_frames: int) -> torch.Tensor:
        x = samples.float()
        x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-7)  # the feature extractor's normalisation
        hidden = self.model(x).last_hidden_state
        return to_frame_rate(hidden, n_frames)


def resolve_wav2vec2(name: str = "wav2vec2_base_960h") -> Path:
    """The folder holding a registered wav2vec2 checkpoint, or WeightsUnavailable naming the fetch commands."""
    from kling.weights import resolve

    model = resolve(name)
    resolve(name + "_config")
    return model.parent
