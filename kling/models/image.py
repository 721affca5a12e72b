"""Reference image tokens for the paper shapes: CLIP ViT-H/14 features as Wan's image-to-video models read them.

Wan I2V / FLF2V (diffusers' WanImageToVideoPipeline.encode_image) take the penultimate hidden states of
transformers' CLIPVisionModel over the processed image: (B, 257, 1280). The diffusers-format folder holds the
encoder in `image_encoder/` and its preprocessing in `image_processor/`. `tiny` uses VAE latent patches
instead (kling.models.avatar.patch_tokens); a text-to-video backbone takes no image tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class ClipImageTokens:
    """Frozen CLIP vision encoder: uint8 RGB images (B, H, W, 3) -> (B, tokens, hidden) penultimate states."""

    def __init__(self, folder: str | Path, device: str = "cpu", dtype=torch.float32):
        from transformers import CLIPImageProcessor, CLIPVisionModel

        folder = Path(folder)
        self.processor = CLIPImageProcessor.from_pretrained(str(folder / "image_processor"), local_files_only=True)
        self.model = CLIPVisionModel.from_pretrained(str(folder / "image_encoder"), local_files_only=True,
                                                     torch_dtype=dtype).to(device).eval().requires_grad_(False)
        self.device, self.dtype = device, dtype

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> torch.Tensor:
        pixels = self.processor(images=list(images), return_tensors="pt").pixel_values
        out = self.model(pixels.to(self.device, self.dtype), output_hidden_states=True)
        return out.hidden_states[-2].float()
