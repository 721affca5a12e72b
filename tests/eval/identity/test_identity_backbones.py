"""ArcFace ONNX loading and preprocessing on a file made here with w600k_r50.onnx's input/output names and shapes."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from eval.identity.backbones import (
    ArcFaceONNX,
    BackboneUnavailable,
    load_arcface,
    load_backbone,
)

# insightface buffalo_l w600k_r50.onnx: one input "input.1" (N, 3, 112, 112), one output "683" (N, 512).
INPUT_NAME, OUTPUT_NAME, EMB_DIM = "input.1", "683", 512


def make_arcface_onnx(path, seed: int = 0, batch=None, first_nodes=("Conv_0",), out_dim: int = EMB_DIM, size: int = 112):
    """A small conv net with ArcFace's I/O signature and seeded random weights (not the real model)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((8, 3, 8, 8)).astype(np.float32) * 0.05
    b = rng.standard_normal(8).astype(np.float32) * 0.01
    fc = rng.standard_normal((8 * (size // 8) ** 2, out_dim)).astype(np.float32) * 0.02
    nodes, x = [], INPUT_NAME
    inits = [numpy_helper.from_array(w, "conv_w"), numpy_helper.from_array(b, "conv_b"),
             numpy_helper.from_array(fc, "fc_w")]
    if "Sub_0" in first_nodes:  # an MXNet-style export that normalises inside the graph
        inits += [numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
                  numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale")]
        nodes += [helper.make_node("Sub", [x, "mean"], ["sub_out"], name="Sub_0"),
                  helper.make_node("Mul", ["sub_out", "scale"], ["mul_out"], name="Mul_1")]
        x = "mul_out"
    nodes += [
        helper.make_node("Conv", [x, "conv_w", "conv_b"], ["c"], name="Conv_2", strides=[8, 8]),
        helper.make_node("Relu", ["c"], ["r"], name="Relu_3"),
        helper.make_node("Flatten", ["r"], ["f"], name="Flatten_4", axis=1),
        helper.make_node("MatMul", ["f", "fc_w"], [OUTPUT_NAME], name="MatMul_5"),
    ]
    graph = helper.make_graph(
        nodes, "arcface_like",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, out_dim])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _crops(n=3, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_loads_official_signature_and_matches_insightface_preprocessing(tmp_path):
    path = make_arcface_onnx(tmp_path / "w600k_r50.onnx")
    model = load_arcface(path)
    assert (model.input_name, model.output_name, model.dim) == (INPUT_NAME, OUTPUT_NAME, EMB_DIM)
    assert (model.input_mean, model.input_std) == (127.5, 127.5)
    assert len(model.sha256) == 64 and model.name == "arcface_w600k_r50"

    crops = _crops()
    ours = model.embed_crops(crops)
    assert ours.shape == (3, EMB_DIM)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)

    # insightface: cv2.imread gives BGR; blobFromImages(1/127.5, mean 127.5, swapRB=True) feeds RGB.
    bgr = [cv2.cvtColor(c, cv2.COLOR_RGB2BGR) for c in crops]
    blob = cv2.dnn.blobFromImages(bgr, 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
    ref = model.session.run([OUTPUT_NAME], {INPUT_NAME: blob})[0]
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)

    # The channel order matters: feeding BGR would give another embedding.
    swapped = model.embed_crops(crops[..., ::-1])
    assert np.abs(swapped - ours).max() > 1e-3


def test_embed_aligns_with_norm_crop(tmp_path):
    from kling.perception.faces.align import norm_crop
    from kling.perception.faces.detection import Detection

    model = ArcFaceONNX(make_arcface_onnx(tmp_path / "a.onnx"))
    img = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    lm5 = np.array([[130, 100], [180, 102], [155, 130], [135, 160], [178, 158]], np.float32)
    det = Detection(100, 60, 210, 190, 0.9, lm5=lm5)
    np.testing.assert_allclose(model.embed(img, [det]), model.embed_crops(norm_crop(img, lm5, 112)[None]), atol=1e-6)
    assert model.embed(img, []).shape == (0, EMB_DIM)


def test_fixed_batch_of_one_runs_crop_by_crop(tmp_path):
    dyn = ArcFaceONNX(make_arcface_onnx(tmp_path / "dyn.onnx", batch=None))
    one = ArcFaceONNX(make_arcface_onnx(tmp_path / "one.onnx", batch=1))
    assert one.max_batch == 1
    crops = _crops(4)
    np.testing.assert_allclose(one.embed_crops(crops), dyn.embed_crops(crops), atol=1e-6)


def test_mxnet_style_graph_gets_raw_pixels(tmp_path):
    """insightface feeds raw pixels (mean 0, std 1) when the graph starts with Sub and Mul nodes."""
    plain = ArcFaceONNX(make_arcface_onnx(tmp_path / "plain.onnx"))
    mx = ArcFaceONNX(make_arcface_onnx(tmp_path / "mx.onnx", first_nodes=("Sub_0", "Mul_1")))
    assert (mx.input_mean, mx.input_std) == (0.0, 1.0)
    crops = _crops(2)
    np.testing.assert_allclose(mx.embed_crops(crops), plain.embed_crops(crops), atol=1e-5)


def test_wrong_signature_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="input shape"):
        ArcFaceONNX(make_arcface_onnx(tmp_path / "bad.onnx", size=96))
    (tmp_path / "junk.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ValueError, match="cannot load"):
        ArcFaceONNX(tmp_path / "junk.onnx")


def test_missing_weights_are_unavailable_not_random(tmp_path):
    with pytest.raises(BackboneUnavailable) as err:
        load_backbone("arcface")
    assert "missing" in err.value.reason and "kling weights fetch" in err.value.fetch_command
    with pytest.raises(BackboneUnavailable):
        load_arcface(tmp_path / "nope.onnx")


def test_dlib_backbone_names_its_file():
    bb = load_backbone("dlib")
    assert bb.name == "dlib_resnet_v1" and len(bb.sha256) == 64 and bb.dim == 128
    with pytest.raises(ValueError, match="unknown backbone"):
        load_backbone("vgg")
