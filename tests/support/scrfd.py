"""A file in the layout of insightface's SCRFD det_10g.onnx, with weights the test chooses."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHANNELS = {"score": 1, "bbox": 4, "kps": 10}  # per anchor, 2 anchors per cell


def write_scrfd_onnx(path, layers: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]], batched: bool = False,
                     name: str = "scrfd") -> str:
    """`layers[stride][kind] = (conv weight, bias)` for kind in score / bbox / kps, as one strided conv each;
    outputs in the official positional order (scores, boxes, points, each over strides 8, 16, 32)."""
    nodes, inits = [], []
    groups: dict[str, list] = {kind: [] for kind in CHANNELS}
    for s, convs in layers.items():
        for kind, ch in CHANNELS.items():
            wt, bias = convs[kind]
            wn, bn = f"w_{kind}_{s}", f"b_{kind}_{s}"
            inits += [numpy_helper.from_array(wt, wn), numpy_helper.from_array(bias, bn)]
            k = wt.shape[2]
            nodes.append(helper.make_node("Conv", ["input.1", wn, bn], [f"c_{kind}_{s}"],
                                          kernel_shape=[k, k], strides=[s, s]))
            src = f"c_{kind}_{s}"
            if kind == "score":
                nodes.append(helper.make_node("Sigmoid", [src], [f"sig_{s}"]))
                src = f"sig_{s}"
            nodes.append(helper.make_node("Transpose", [src], [f"t_{kind}_{s}"], perm=[0, 2, 3, 1]))
            shape = np.array([0, -1, ch] if batched else [-1, ch], np.int64)
            inits.append(numpy_helper.from_array(shape, f"shape_{kind}_{s}"))
            nodes.append(helper.make_node("Reshape", [f"t_{kind}_{s}", f"shape_{kind}_{s}"], [f"{kind}_{s}"]))
            dims = ["N", "K", ch] if batched else ["K", ch]
            groups[kind].append(helper.make_tensor_value_info(f"{kind}_{s}", TensorProto.FLOAT, dims))
    inp = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N" if batched else 1, 3, "H", "W"])
    graph = helper.make_graph(nodes, name, [inp], groups["score"] + groups["bbox"] + groups["kps"], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
