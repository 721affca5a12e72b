"""SCRFD face detector (insightface buffalo_l det_10g.onnx) through insightface's own `model_zoo.SCRFD`.

insightface decodes the model (letterbox into the top-left of the input canvas, (x - 127.5) / 128 blob,
anchors at the cell corners of strides 8/16/32 (or 8..128), distance-to-box and -keypoint decoding, score
threshold, greedy NMS with +1-pixel areas, boxes and points divided back by the letterbox scale). This
module only builds its onnxruntime session (our providers and threads), checks that the file is an SCRFD
model, turns RGB frames into the BGR images insightface expects, and wraps its (boxes, points) in our
`Detection`s, adding dlib's 68 points when asked.

Importing any insightface submodule runs the package's __init__, which also imports its `app`, `data` and
`thirdparty` parts: all of them import offline here, write nothing and download nothing (checked with
insightface 2.1); the import costs ~1 s, so it happens only when a detector is built.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kling.perception.faces.detection import Detection, as_batch, default_threads, lm5_from_box
from kling.perception.faces.landmarks import Dlib68Predictor, box_from_lm5
from kling.weights import get_weight, resolve, sha256_of

# number of outputs -> (strides, anchors per location, has keypoints): SCRFD's exports (insightface's table)
_LAYOUTS = {
    6: ((8, 16, 32), 2, False),
    9: ((8, 16, 32), 2, True),
    10: ((8, 16, 32, 64, 128), 1, False),
    15: ((8, 16, 32, 64, 128), 1, True),
}


def resolve_scrfd_weights(weights_dir: str | Path | None = None) -> Path:
    """det_10g.onnx from the weights registry, or from `weights_dir` (a folder or the file itself)."""
    if weights_dir is None:
        return resolve("scrfd_10g")
    p = Path(weights_dir)
    return resolve("scrfd_10g", path=p if p.suffix == ".onnx" else p / get_weight("scrfd_10g").filename)


def onnx_session(model_path: str | Path, threads: int | None = None, gpu: bool = True):
    """An onnxruntime session on CPU (CUDA first when `gpu` and onnxruntime has it); `threads` intra-op."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if gpu and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(model_path), opts, providers=providers)


class ScrfdDetector:
    """insightface SCRFD; 5 points from the model, optional dlib 68 points.

    landmarks=True adds dlib's 68-point landmarks (for mouth opening) predicted inside a dlib-style
    box derived from SCRFD's 5 points; the 5 points themselves stay SCRFD's.
    """

    name = "scrfd"

    def __init__(
        self,
        model_path: str | Path,
        input_size: tuple[int, int] = (640, 640),
        det_thresh: float = 0.5,
        nms_thresh: float = 0.4,
        landmarks: bool = True,
        threads: int | None = None,
    ):
        from insightface.model_zoo import SCRFD

        self.model_path = Path(model_path)
        session = onnx_session(self.model_path, threads)
        n_out = len(session.get_outputs())
        if n_out not in _LAYOUTS:
            raise ValueError(f"{self.model_path.name}: {n_out} outputs; an SCRFD model has 6, 9, 10 or 15")
        # model_zoo.get_model would build this same class (it routes any graph with >= 5 outputs to SCRFD); we
        # hand it our session so that threads and providers are ours. static_shape_sessions=False: run that one
        # session at every size, as before, instead of compiling a second fixed-size copy of the graph.
        self.model = SCRFD(model_file=str(self.model_path), session=session, static_shape_sessions=False)
        # A model exported with a fixed input size keeps it (insightface's rule); else ours.
        self.model.prepare(0, input_size=tuple(input_size), det_thresh=float(det_thresh),
                           nms_thresh=float(nms_thresh))
        self.input_size = tuple(self.model.input_size)
        self.det_thresh = float(det_thresh)
        self.nms_thresh = float(nms_thresh)
        self._lm = Dlib68Predictor() if landmarks else None

    # the model's layout, as insightface read it
    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(self.model._feat_stride_fpn)

    @property
    def num_anchors(self) -> int:
        return self.model._num_anchors

    @property
    def use_kps(self) -> bool:
        return self.model.use_kps

    @property
    def input_name(self) -> str:
        return self.model.input_name

    @property
    def batched(self) -> bool:
        return self.model.batched

    def info(self) -> dict:
        out = {
            "name": self.name,
            "weights": self.model_path.name,
            "weights_sha256": sha256_of(self.model_path),
            "input_size": list(self.input_size),
            "det_thresh": self.det_thresh,
            "nms_thresh": self.nms_thresh,
        }
        if self._lm is not None:
            out["landmarks"] = self._lm.model_path.name
            out["landmarks_sha256"] = sha256_of(self._lm.model_path)
        return out

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        frames = as_batch(frames)
        results = []
        for frame in frames:
            # insightface takes cv2's BGR and swaps to RGB for the network: give it BGR so the net sees RGB.
            det, kps = self.model.detect(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), input_size=self.input_size)
            dets = []
            for i in range(len(det)):
                box = det[i, :4].astype(np.float32)
                lm5 = kps[i].astype(np.float32) if kps is not None else lm5_from_box(box)
                lm68 = self._lm.predict(frame, box_from_lm5(lm5)) if self._lm is not None else None
                dets.append(Detection(*map(float, box), score=float(det[i, 4]), lm5=lm5, lm68=lm68))
            results.append(dets)
        return results
