"""The FID Inception: loads the official state-dict format unchanged, refuses anything else, and FID over
folders behaves (zero against itself, grows with distortion, cached by content, resize modes named)."""

from __future__ import annotations

import pytest
import torch

from eval.fid.features import load_extractor
from eval.fid.fid import compute_fid
from eval.fid.inception import expected_shapes, load_inception
from tests.support.fid import random_state_dict, write_inception_weights
from kling.weights import WeightsUnavailable
from tests.support.fid_images import image_folder, smooth_images


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_inception_weights(tmp_path_factory.mktemp("w") / "pt_inception-2015-12-05-6726825d.pth", seed=1)




def test_official_keys_and_shapes():
    shapes = expected_shapes()
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["fc.weight"] == (1008, 2048)
    assert not any("AuxLogits" in k for k in shapes)
    assert len([k for k in shapes if k.endswith("conv.weight")]) == 94  # torchvision Inception3 without aux


def test_loads_with_or_without_bn_counters(tmp_path):
    # 75x75 without the 299 resize: Inception's smallest input, to keep the test fast
    a = load_inception(write_inception_weights(tmp_path / "a.pth", seed=0, with_counters=True), resize_input=False)
    b = load_inception(write_inception_weights(tmp_path / "b.pth", seed=0, with_counters=False), resize_input=False)
    x = torch.rand(1, 3, 75, 75)
    fa, fb = a(x), b(x)
    assert torch.equal(fa, fb)
    assert fa.shape == (1, 2048) and torch.isfinite(fa).all() and fa.std() > 0


def test_rejects_files_that_are_not_the_state_dict(tmp_path):
    sd = random_state_dict(expected_shapes(), seed=0)
    bad_shape = dict(sd)
    bad_shape["fc.weight"] = torch.zeros(1000, 2048)
    missing = {k: v for k, v in sd.items() if not k.startswith("Mixed_7c")}
    for name, obj in {"shape": bad_shape, "missing": missing, "tensor": torch.zeros(3)}.items():
        torch.save(obj, tmp_path / f"{name}.pth")
        with pytest.raises(WeightsUnavailable, match="not|expected"):
            load_extractor(tmp_path / f"{name}.pth")
    with pytest.raises(WeightsUnavailable):
        load_extractor(tmp_path / "absent.pth")


def test_unavailable_without_weights_names_the_fix(tmp_path):
    ref = image_folder(tmp_path, "ref", smooth_images(0, n=2))
    res = compute_fid(ref, ref)
    assert res.status == "unavailable" and res.value is None
    assert "kling weights fetch inception_pt_fid" in res.reason
    row = res.to_rows()[0]
    assert row["status"] == "unavailable" and row["backbone"] and row["protocol_version"] == "fid-v1/bilinear/s5"


