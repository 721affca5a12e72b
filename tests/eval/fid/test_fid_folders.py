"""FID over folders with the real network on small images: zero against itself, grows with distortion, a
second system reuses the cached reference features, resize modes are named and differ, and torchmetrics'
metric object over the same backbone agrees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.fid.cache import FeatureCache
from eval.fid.features import clean_resize, load_extractor, torchmetrics_fid
from eval.fid.fid import compute_fid
from tests.support.fid import write_inception_weights
from tests.support.fid_images import image_folder, smooth_images


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_inception_weights(tmp_path_factory.mktemp("w") / "pt_inception-2015-12-05-6726825d.pth", seed=1)


@pytest.fixture(scope="module")
def ext(weights):
    return load_extractor(weights)




def test_fid_zero_on_itself_grows_with_noise_and_caches(tmp_path, weights, ext):
    ref = image_folder(tmp_path, "ref", smooth_images(0))
    near = image_folder(tmp_path, "near", smooth_images(0, noise=8))
    far = image_folder(tmp_path, "far", smooth_images(0, noise=60))
    cache = FeatureCache(tmp_path / "cache")
    same = compute_fid(ref, ref, cache=cache, extractor=ext)
    assert abs(same.value) < 1e-6
    d_near = compute_fid(ref, near, cache=cache, extractor=ext).value
    d_far = compute_fid(ref, far, cache=cache, extractor=ext).value
    assert 0 < d_near < d_far
    # a second system against the same reference: the reference's 4 features come from the cache
    hits = cache.hits
    compute_fid(ref, near, cache=cache, extractor=ext)
    assert cache.hits - hits == 8
    res = compute_fid(ref, far, weights=weights, cache=cache)
    assert res.value == pytest.approx(d_far, abs=1e-9)
    d = res.to_dict()
    assert d["n"] == 4 and d["backbone_sha256"] and d["protocol_version"] == "fid-v1/bilinear/s5"


def test_clean_mode_is_pil_bicubic_per_channel(tmp_path, weights, ext):
    from PIL import Image

    img = smooth_images(3, n=1, size=50)[0]
    out = clean_resize(img)
    ch = Image.fromarray(img[:, :, 1].astype(np.float32), mode="F").resize((299, 299), Image.BICUBIC)
    assert out.shape == (299, 299, 3) and out.dtype == np.float32
    assert np.array_equal(out[:, :, 1], np.asarray(ch).clip(0, 255))
    ref = image_folder(tmp_path, "ref", smooth_images(0))
    gen = image_folder(tmp_path, "gen", smooth_images(0, noise=30))
    a = compute_fid(ref, gen, cache=False, extractor=ext)
    b = compute_fid(ref, gen, weights=weights, cache=False, resize="clean")
    assert b.protocol_version == "fid-v1/clean/s5" and a.value != pytest.approx(b.value, rel=1e-3)


@pytest.mark.slow  # torchmetrics takes a general eigendecomposition of a 2048x2048 product
def test_torchmetrics_metric_object_agrees(ext):
    ref, gen = np.stack(smooth_images(0)), np.stack(smooth_images(0, noise=30))
    metric = torchmetrics_fid(ext)
    metric.update(torch.from_numpy(ref).permute(0, 3, 1, 2), real=True)
    metric.update(torch.from_numpy(gen).permute(0, 3, 1, 2), real=False)
    tm = float(metric.compute())
    from eval.fid.frechet import frechet_distance_features

    ours = frechet_distance_features(ext(ref), ext(gen))
    # torchmetrics: covariance from raw sums and a float32 result, on 4 singular 2048-d samples
    assert tm == pytest.approx(ours, rel=2e-3)
