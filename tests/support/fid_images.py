"""Small deterministic image sets for the FID tests (imported by them; not a test module)."""

from __future__ import annotations

import numpy as np


def image_folder(root, name, images):
    from PIL import Image

    d = root / name
    d.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(d / f"{i:02d}.png")
    return d


def smooth_images(seed, n=4, size=64, noise=0.0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        base = np.stack([np.sin(6 * xx + i), yy * (i + 1) % 1.0, (xx * yy)], axis=2) * 127 + 128
        out.append(np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8))
    return out
