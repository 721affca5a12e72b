"""Fréchet distance between Gaussians fitted to two feature sets, in float64, stable when covariances are
(near-)singular.

d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

pytorch-fid takes ``scipy.linalg.sqrtm(S1 @ S2)`` (adding 1e-6 to both diagonals when that is not finite,
and dropping a small imaginary part). For PSD S1, S2 the eigenvalues of S1 S2 are those of the symmetric
PSD matrix S1^{1/2} S2 S1^{1/2}, so the trace term is computed from symmetric eigendecompositions (no complex
arithmetic, negative round-off eigenvalues clipped to 0). When one set has no more samples than dimensions
(the usual case for per-window FID: a few hundred frames against 2048 dims) the covariances are singular
and the term is taken exactly from the features: with centred X1 (n1 x d), X2 (n2 x d),
tr((S1 S2)^{1/2}) = sum of singular values of X1 X2^T / sqrt((n1 - 1)(n2 - 1)). Both agree with
pytorch-fid's figure to ~1e-4 on singular 2048-d sets and to ~1e-9 on well-conditioned ones (tests), and
run in a fraction of sqrtm's time (scipy's 2048-d sqrtm takes minutes on 2 cores).
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, unbiased covariance) in float64, as pytorch-fid (np.mean, np.cov(rowvar=False))."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need a (n >= 2, d) feature array, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) for symmetric PSD S1, S2 (float64, eigendecompositions)."""
    r = _psd_sqrt(np.asarray(sigma1, np.float64))
    m = r @ np.asarray(sigma2, np.float64) @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance from (mean, covariance) pairs."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"shapes differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


def frechet_distance_features(x1: np.ndarray, x2: np.ndarray) -> float:
    """Fréchet distance between two feature sets (n1, d) and (n2, d); exact low-rank route when n <= d."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"feature sets must be (n, d) with equal d: {x1.shape} vs {x2.shape}")
    n1, n2, d = len(x1), len(x2), x1.shape[1]
    if n1 < 2 or n2 < 2:
        raise ValueError(f"need at least 2 samples per set (got {n1} and {n2})")
    if min(n1, n2) > d:
        return frechet_distance(*gaussian_stats(x1), *gaussian_stats(x2))
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    a, b = x1 - mu1, x2 - mu2
    tr1 = float((a * a).sum()) / (n1 - 1)
    tr2 = float((b * b).sum()) / (n2 - 1)
    s = np.linalg.svd(a @ b.T, compute_uv=False)
    tr_sqrt = float(s.sum()) / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2.0 * tr_sqrt)
