"""Raster helpers for the demo renderer: fixed-point anti-aliased fills, masked painting, soft shading,
backdrops and sensor grain (numpy + OpenCV only)."""

from __future__ import annotations

import math

import cv2
import numpy as np

SHIFT = 4  # cv2 sub-pixel bits: smooth motion without resampling the frame
ONE = 1 << SHIFT


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: random grid upsampled bicubically."""
    g = rng.standard_normal((h // cell + 3, w // cell + 3)).astype(np.float32)
    big = cv2.resize(g, ((w // cell + 3) * cell, (h // cell + 3) * cell), interpolation=cv2.INTER_CUBIC)
    return np.clip(big[cell : cell + h, cell : cell + w] / 2.0, -1.0, 1.0)


def render_background(
    size: int, top: tuple[int, int, int], bottom: tuple[int, int, int], seed: int, height: int | None = None
) -> np.ndarray:
    """A non-flat room-like backdrop: vertical gradient, a soft window and shelf, low-frequency texture.

    `size` is the width; `height` defaults to it (square)."""
    rng = np.random.default_rng(seed)
    w, h = size, height or size
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    img = np.repeat(img, w, axis=1)
    deco = np.zeros((h, w), np.float32)
    wx = int(rng.uniform(0.0, 0.15) * w) if rng.random() < 0.5 else int(rng.uniform(0.7, 0.85) * w)
    wy = int(rng.uniform(0.08, 0.2) * h)
    cv2.rectangle(deco, (wx, wy), (wx + w // 5, wy + h // 4), 1.0, -1)
    bright = cv2.GaussianBlur(deco, (0, 0), min(w, h) / 60)
    shelf = np.zeros_like(deco)
    sy = int(rng.uniform(0.55, 0.7) * h)
    cv2.rectangle(shelf, (0, sy), (w, sy + h // 40), 1.0, -1)
    shelf = cv2.GaussianBlur(shelf, (0, 0), 1.5)
    tex = smooth_noise(rng, h, w, max(4, min(w, h) // 16))
    img = img * (1.0 + 0.25 * bright[..., None] - 0.25 * shelf[..., None] + 0.06 * tex[..., None])
    return np.clip(img, 0, 255).astype(np.float32)


def ellipse_pts(cx, cy, ax, ay, n=48, t0=0.0, t1=2 * math.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n, dtype=np.float32)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], 1)


def fill(mask: np.ndarray, pts_fx: np.ndarray, val: float = 1.0) -> None:
    cv2.fillPoly(mask, [pts_fx.reshape(-1, 1, 2)], val, cv2.LINE_AA, SHIFT)


def paint(img: np.ndarray, mask: np.ndarray, color) -> None:
    """Alpha-blend a colour (scalar or HxWx3 map) through a float mask in 0..1."""
    rows = np.flatnonzero(mask.max(1) > 0)
    if rows.size == 0:
        return
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].max(0) > 0)
    ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)  # paint only the touched box
    m = mask[ys, xs, None]
    color = np.asarray(color, np.float32)
    if color.ndim == 3:
        color = color[ys, xs]
    roi = img[ys, xs]
    roi *= 1.0 - m
    roi += m * color


def soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones run at quarter resolution (same look for smooth shading, ~10x cheaper)."""
    if sigma < 4 or min(mask.shape) < 32:
        return cv2.GaussianBlur(mask, (0, 0), sigma)
    h, w = mask.shape
    small = cv2.resize(mask, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def grain_bank(seed: int, size: int, n: int = 8, height: int | None = None) -> np.ndarray:
    """A few fields of sensor grain (std 2 levels) to cycle through: per-frame noise without per-frame cost.

    `size` is the width; `height` defaults to it."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 2.0, (n, height or size, size)).astype(np.float32)
