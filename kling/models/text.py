"""Text features: Wan's cross-attention reads (B, 512, text_dim) embeddings, zero beyond the prompt's length.

`tiny`: a small trainable encoder over UTF-8 bytes. Paper shapes: umT5-XXL encoder embeddings as Wan uses
them (transformers' UMT5EncoderModel and tokenizer from the diffusers-format folder's `text_encoder/` and
`tokenizer/`), precomputed once per prompt.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

MAX_LEN = 512  # Wan's text context length (its attention processor splits image tokens off at 512)


def byte_tokens(texts: list[str], max_len: int = MAX_LEN) -> tuple[torch.Tensor, torch.Tensor]:
    """UTF-8 bytes + 1 (0 = padding) -> ids (B, max_len) and lengths (B,)."""
    ids = torch.zeros(len(texts), max_len, dtype=torch.long)
    lengths = torch.zeros(len(texts), dtype=torch.long)
    for i, t in enumerate(texts):
        b = list(t.encode("utf-8"))[:max_len]
        ids[i, : len(b)] = torch.tensor(b, dtype=torch.long) + 1 if b else ids[i, :0]
        lengths[i] = len(b)
    return ids, lengths


class TinyTextEncoder(nn.Module):
    """Bytes -> embedding + one transformer encoder layer; positions past the text are zero (as Wan pads)."""

    def __init__(self, dim: int = 32, layers: int = 1, max_len: int = MAX_LEN, heads: int = 2):
        super().__init__()
        self.max_len = max_len
        self.embed = nn.Embedding(257, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids, lengths = byte_tokens(texts, self.max_len)
        ids = ids.to(self.pos.device)
        keep = (torch.arange(self.max_len, device=ids.device)[None] < lengths.to(ids.device)[:, None])
        h = self.embed(ids) + self.pos
        h = self.encoder(h, src_key_padding_mask=~keep | (lengths[:, None] == 0).to(ids.device))
        return torch.where(keep[..., None], h, torch.zeros_like(h))


class UMT5Embedder:
    """umT5 prompt embeddings as Wan computes them: tokenize to 512, encode, zero past each prompt's length."""

    def __init__(self, folder: str | Path, device: str = "cpu", dtype=torch.float32):
        from transformers import AutoTokenizer, UMT5EncoderModel

        folder = Path(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        self.model = UMT5EncoderModel.from_pretrained(str(folder / "text_encoder"), local_files_only=True,
                                                      torch_dtype=dtype).to(device).eval()
        self.device = device

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(texts, padding="max_length", max_length=MAX_LEN, truncation=True,
                             add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        mask = tok.attention_mask.to(self.device)
        h = self.model(tok.input_ids.to(self.device), mask).last_hidden_state
        return h * mask[..., None].to(h.dtype)
