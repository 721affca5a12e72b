"""The Fréchet distance: float64, equal to pytorch-fid's formula (scipy sqrtm) where that is well defined,
equal to torchmetrics' on the same statistics, exact and finite on singular covariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from eval.fid.frechet import frechet_distance, frechet_distance_features, gaussian_stats


def pytorch_fid_formula(mu1, s1, mu2, s2, eps=1e-6):
    """fid_score.calculate_frechet_distance's arithmetic (sqrtm of the product, eps fallback, real part)."""
    covmean = linalg.sqrtm(s1.dot(s2))  # (disp=False in pytorch-fid only silences scipy's own warning)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = covmean.real
    d = mu1 - mu2
    return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def _sets(n1, n2, d, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    x1 = np.abs(rng.normal(size=(n1, d))) @ mix
    x2 = (np.abs(rng.normal(size=(n2, d))) * 1.3 + 0.2) @ mix
    return x1, x2


@pytest.mark.parametrize("n1,n2,d", [(400, 300, 64), (30, 40, 64), (5, 7, 128)])
def test_matches_pytorch_fid_formula(n1, n2, d):
    x1, x2 = _sets(n1, n2, d)
    ref = pytorch_fid_formula(*gaussian_stats(x1), *gaussian_stats(x2))
    assert frechet_distance(*gaussian_stats(x1), *gaussian_stats(x2)) == pytest.approx(ref, abs=1e-6 * max(1, ref) + 1e-4)
    assert frechet_distance_features(x1, x2) == pytest.approx(ref, abs=1e-6 * max(1, ref) + 1e-4)


def test_matches_torchmetrics_compute_fid():
    from torchmetrics.image.fid import _compute_fid

    x1, x2 = _sets(500, 400, 64, seed=3)
    (m1, s1), (m2, s2) = gaussian_stats(x1), gaussian_stats(x2)
    tm = float(_compute_fid(*(torch.from_numpy(a) for a in (m1, s1, m2, s2))))
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(tm, rel=1e-9)


def test_singular_and_identical_sets_are_stable():
    x1, x2 = _sets(6, 9, 512, seed=1)
    a = frechet_distance_features(x1, x2)
    b = frechet_distance(*gaussian_stats(x1), *gaussian_stats(x2))
    assert np.isfinite(a) and a > 0 and a == pytest.approx(b, rel=1e-6)
    assert abs(frechet_distance_features(x1, x1)) < 1e-8
    # rank-1 covariances (two samples each), and exactly collinear features
    assert frechet_distance_features(x1[:2], x1[:2] + 1.0) == pytest.approx(512.0, rel=1e-9)
    with pytest.raises(ValueError):
        frechet_distance_features(x1[:1], x2)
