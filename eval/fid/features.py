"""Images -> pool3 features under a named resize protocol, and image-file reading as pytorch-fid does it.

Resize modes (recorded in every result's protocol):

- ``bilinear`` (default, pytorch-fid): uint8 -> float32 / 255 (torchvision's ``ToTensor``), then inside the
  network ``F.interpolate(size=299, mode='bilinear', align_corners=False)``, then 2x - 1.
- ``clean`` (clean-fid's ``mode="clean"``): each channel as a float32 PIL image resized to 299x299 with PIL's
  bicubic filter (antialiased when downscaling), clipped to [0, 255], then / 255 into the same network
  (whose bilinear resize is then the identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from eval.fid.inception import BACKBONE, FEATURE_DIM, INPUT_SIZE, FIDInceptionV3

RESIZE_MODES = ("bilinear", "clean")
IMAGE_EXTENSIONS = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"}  # pytorch-fid's list


def list_images(directory: str | Path) -> list[Path]:
    """Image files directly in ``directory``, sorted by name (pytorch-fid's extensions)."""
    d = Path(directory)
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) exactly as pytorch-fid reads it (PIL ``Image.open(path).convert('RGB')``)."""
    from PIL import Image, UnidentifiedImageError

    from kling.io.errors import UnreadableMediaError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise UnreadableMediaError(f"cannot read image {path}: {exc}") from exc


def clean_resize(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """clean-fid's ``make_resizer('PIL', False, 'bicubic', (size, size))``: float32 (size, size, 3) in [0, 255]."""
    from PIL import Image

    chans = []
    for c in range(3):
        img = Image.fromarray(np.ascontiguousarray(image[:, :, c]).astype(np.float32), mode="F")
        chans.append(np.asarray(img.resize((size, size), resample=Image.BICUBIC)).clip(0, 255))
    return np.stack(chans, axis=2).astype(np.float32)


def to_input(images: np.ndarray, resize: str) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> network input (n, 3, h, w) float32 in [0, 1] for the resize mode."""
    if resize == "bilinear":
        t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        return t.float().div(255)  # torchvision ToTensor: to float, then divide
    if resize == "clean":
        arr = np.stack([clean_resize(im) for im in images])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().div(255)
    raise ValueError(f"unknown resize mode {resize!r}; choose one of {RESIZE_MODES}")


@dataclass
class InceptionExtractor:
    """A loaded FID Inception plus what identifies its numbers; call it on uint8 images."""

    model: FIDInceptionV3
    sha256: str
    resize: str = "bilinear"
    batch_size: int = 32
    device: str = "cpu"
    name: str = BACKBONE
    dim: int = FEATURE_DIM
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.resize!r}; choose one of {RESIZE_MODES}")
        self.model = self.model.to(self.device).eval()

    @property
    def protocol(self) -> dict:
        return {"resize": self.resize, "input": "uint8 RGB / 255", "size": INPUT_SIZE, "layer": "pool3",
                "dim": self.dim}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 RGB, one size -> (n, 2048) float32."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected (n, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
        out = np.empty((len(images), self.dim), np.float32)
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                x = to_input(images[i:i + self.batch_size], self.resize).to(self.device)
                out[i:i + len(x)] = self.model(x).float().cpu().numpy()
        return out

    def many(self, images: Iterable[np.ndarray]) -> np.ndarray:
        """Features of images of any sizes (consecutive equal sizes batched together)."""
        feats = [self(batch) for batch in _same_size_batches(images, self.batch_size)]
        return np.concatenate(feats) if feats else np.zeros((0, self.dim), np.float32)


def _same_size_batches(images: Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for im in images:
        if batch and (im.shape != batch[0].shape or len(batch) == batch_size):
            yield np.stack(batch)
            batch = []
        batch.append(im)
    if batch:
        yield np.stack(batch)


def load_extractor(weights: str | Path | None = None, resize: str = "bilinear", batch_size: int = 32,
                   device: str = "cpu") -> InceptionExtractor:
    """The FID backbone through the weights registry; raises kling.weights.WeightsUnavailable (missing or
    unverified file, or a file that is not pytorch-fid's state dict)."""
    from eval.fid.inception import WEIGHT_NAME, InceptionWeightsError, load_inception
    from kling.weights import WeightsUnavailable, get_weight, resolve, sha256_of

    path = resolve(WEIGHT_NAME, path=weights)
    try:
        model = load_inception(path)
    except InceptionWeightsError as exc:
        raise WeightsUnavailable(str(exc), get_weight(WEIGHT_NAME).fetch_command) from exc
    return InceptionExtractor(model, sha256_of(path), resize=resize, batch_size=batch_size, device=device,
                              meta={"path": str(path)})


class TorchmetricsFeature(torch.nn.Module):
    """The extractor as the ``feature=`` module of torchmetrics' FrechetInceptionDistance: uint8 (N, 3, H, W)
    in, (N, 2048) float32 out, under the extractor's resize protocol."""

    def __init__(self, extractor: InceptionExtractor) -> None:
        super().__init__()
        self.extractor = extractor
        self.num_features = extractor.dim

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        arr = imgs.detach().cpu().permute(0, 2, 3, 1).numpy()
        if arr.dtype != np.uint8:
            raise TypeError("pass uint8 images (0..255); the resize protocol starts from uint8")
        return torch.from_numpy(self.extractor(arr))


def torchmetrics_fid(extractor: InceptionExtractor, reset_real_features: bool = False):
    """A streaming ``torchmetrics.image.fid.FrechetInceptionDistance`` over this backbone (update(imgs, real))."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=TorchmetricsFeature(extractor), reset_real_features=reset_real_features)
