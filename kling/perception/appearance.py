"""Appearance from pixels: colour names, the colour of a region (hair above a face, clothes below it), the
background and the lighting of a frame. Shared by curation's captions and the director's visual expert."""

from __future__ import annotations

import cv2
import numpy as np

# basic colour names by HSV: (name, hue range in degrees) for saturated colours; greys by value
_HUES = [("red", 0, 15), ("orange", 15, 40), ("yellow", 40, 70), ("green", 70, 160), ("cyan", 160, 200),
         ("blue", 200, 255), ("purple", 255, 290), ("pink", 290, 340), ("red", 340, 361)]


def colour_name(rgb) -> str:
    r, g, b = (float(v) / 255 for v in rgb)
    mx, mn = max(r, g, b), min(r, g, b)
    if mx < 0.2:
        return "black"
    sat = 0 if mx == 0 else (mx - mn) / mx
    if sat < 0.18:
        return "white" if mx > 0.85 else ("light grey" if mx > 0.6 else ("grey" if mx > 0.35 else "dark grey"))
    h, _, _ = cv2.cvtColor(np.uint8([[[r * 255, g * 255, b * 255]]]), cv2.COLOR_RGB2HSV_FULL)[0, 0]
    hue = float(h) * 360 / 256
    name = next(n for n, lo, hi in _HUES if lo <= hue < hi)
    if name in ("orange", "red") and mx < 0.55:
        return "brown"
    return ("dark " + name) if mx < 0.45 else name


def region_colour(img: np.ndarray, x0, y0, x1, y1) -> str | None:
    h, w = img.shape[:2]
    x0, x1 = int(max(0, x0)), int(min(w, x1))
    y0, y1 = int(max(0, y0)), int(min(h, y1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return colour_name(np.median(img[y0:y1, x0:x1].reshape(-1, 3), axis=0))


def scene_and_lighting(img: np.ndarray, boxes) -> tuple[str, str]:
    """Background from the image border (outside faces), lighting from luminance statistics."""
    h, w = img.shape[:2]
    mask = np.zeros((h, w), bool)
    b = max(2, min(h, w) // 10)
    mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = True, True, True, True
    for (x0, y0, x1, y1) in boxes:
        mask[int(max(0, y0)):int(y1), int(max(0, x0)):int(x1)] = False
    px = img[mask] if mask.any() else img.reshape(-1, 3)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = float(np.std(cv2.Laplacian(grey, cv2.CV_32F)[mask])) if mask.any() else 0.0
    kind = "plain" if texture < 6 else "textured"
    scene = f"{kind} {colour_name(np.median(px, axis=0))} background"
    luma = float(grey.mean())
    level = "bright" if luma > 150 else ("dim" if luma < 70 else "moderately lit")
    left, right = grey[:, : w // 2].mean(), grey[:, w // 2:].mean()
    side = "side-lit from the left" if left - right > 25 else ("side-lit from the right" if right - left > 25
                                                              else "evenly lit")
    return scene, f"{level}, {side}"
