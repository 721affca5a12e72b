"""SCRFD face detector (insightface buffalo_l det_10g.onnx) on onnxruntime.

Decoding follows insightface's python-package/insightface/model_zoo/scrfd.py:
- the frame is letterboxed into the model input (default 640x640): resized keeping its aspect ratio
  (cv2 bilinear), placed at the top-left corner of a black canvas; det_scale = new_h / h;
- input blob (x - 127.5) / 128, RGB, NCHW float32;
- outputs in positional order: scores, boxes, keypoints per stride (8, 16, 32 for 6 / 9 outputs,
  with 2 anchors per location; 8..128 with 1 anchor for 10 / 15 outputs); each (K*A, C) or
  batched (N, K*A, C); box and keypoint predictions are distances in stride units;
- anchor centres are (x * stride, y * stride) of each feature-map cell (cell corners, not
  centres), repeated per anchor; distance2bbox / distance2kps decode around them;
- candidates with score >= det_thresh (0.5) from all strides are sorted by score and greedy NMS
  (IoU > 0.4, areas with insightface's +1 pixel convention) keeps the survivors;
- boxes and points are divided by det_scale back to frame pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kling.perception.faces.detection import Detection, as_batch, default_threads, lm5_from_box
from kling.perception.faces.landmarks import Dlib68Predictor, box_from_lm5
from kling.weights import get_weight, resolve, sha256_of

INPUT_MEAN = 127.5
INPUT_STD = 128.0

# number of outputs -> (strides, anchors per location, has keypoints)
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


def letterbox(img: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize keeping aspect into the top-left of an input_size (w, h) black canvas -> (canvas, scale)."""
    in_w, in_h = input_size
    h, w = img.shape[:2]
    if h / w > in_h / in_w:
        new_h = in_h
        new_w = int(new_h / (h / w))
    else:
        new_w = in_w
        new_h = int(new_w * (h / w))
    det_scale = new_h / h
    canvas = np.zeros((in_h, in_w, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(img, (new_w, new_h))
    return canvas, det_scale


def anchor_centres(height: int, width: int, stride: int, num_anchors: int) -> np.ndarray:
    """(height*width*num_anchors, 2) float32 (x, y) cell corners, each repeated num_anchors times."""
    ys, xs = np.mgrid[:height, :width]
    centres = np.stack([xs, ys], axis=-1).astype(np.float32).reshape(-1, 2) * stride
    return np.repeat(centres, num_anchors, axis=0)


def distance2bbox(points: np.ndarray, dist: np.ndarray) -> np.ndarray:
    return np.stack(
        [points[:, 0] - dist[:, 0], points[:, 1] - dist[:, 1],
         points[:, 0] + dist[:, 2], points[:, 1] + dist[:, 3]],
        axis=-1,
    )


def distance2kps(points: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(n, 2k) offsets -> (n, k, 2) points."""
    return (dist.reshape(len(dist), dist.shape[1] // 2, 2) + points[:, None, :]).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> list[int]:
    """Greedy NMS, insightface convention (inclusive pixel areas: +1). Returns kept indices."""
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[rest] - inter)
        order = rest[ovr <= thresh]
    return keep


class ScrfdDetector:
    """insightface SCRFD on onnxruntime; 5 points from the model, optional dlib 68 points.

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
        import onnxruntime as ort

        self.model_path = Path(model_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        providers = ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(self.model_path), opts, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        outputs = self.session.get_outputs()
        if len(outputs) not in _LAYOUTS:
            raise ValueError(
                f"{self.model_path.name}: {len(outputs)} outputs; an SCRFD model has 6, 9, 10 or 15"
            )
        self.output_names = [o.name for o in outputs]
        self.strides, self.num_anchors, self.use_kps = _LAYOUTS[len(outputs)]
        self.batched = len(outputs[0].shape) == 3
        # A model exported with a fixed input size keeps it (as insightface does); else ours.
        h, w = inp.shape[2], inp.shape[3]
        self.input_size = (w, h) if isinstance(h, int) and isinstance(w, int) else tuple(input_size)
        self.batch_dynamic = not isinstance(inp.shape[0], int) and self.batched
        self.det_thresh = float(det_thresh)
        self.nms_thresh = float(nms_thresh)
        self._lm = Dlib68Predictor() if landmarks else None
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

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

    def _centres_for(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        if key not in self._centres:
            self._centres[key] = anchor_centres(height, width, stride, self.num_anchors)
        return self._centres[key]

    def _decode(self, outs: list[np.ndarray], det_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One image's raw outputs -> (boxes (n,4), scores (n,), kps (n,5,2) or None) after NMS."""
        in_w, in_h = self.input_size
        fmc = len(self.strides)
        boxes, scores, kpss = [], [], []
        for idx, stride in enumerate(self.strides):
            s = outs[idx].reshape(-1)
            pos = np.where(s >= self.det_thresh)[0]
            centres = self._centres_for(in_h // stride, in_w // stride, stride)
            if len(centres) != len(s):
                raise ValueError(
                    f"SCRFD output {self.output_names[idx]} has {len(s)} rows, expected {len(centres)}"
                )
            boxes.append(distance2bbox(centres[pos], outs[idx + fmc][pos] * stride))
            scores.append(s[pos])
            if self.use_kps:
                kpss.append(distance2kps(centres[pos], outs[idx + 2 * fmc][pos] * stride))
        b = np.concatenate(boxes) / det_scale
        sc = np.concatenate(scores)
        order = np.argsort(sc)[::-1]
        b, sc = b[order], sc[order]
        keep = nms(b, sc, self.nms_thresh)
        k = np.concatenate(kpss)[order][keep] / det_scale if self.use_kps else None
        return b[keep].astype(np.float32), sc[keep].astype(np.float32), k

    def _run(self, blobs: np.ndarray) -> list[list[np.ndarray]]:
        """Per-image output lists for a (n, 3, H, W) blob."""
        if self.batch_dynamic:
            outs = self.session.run(self.output_names, {self.input_name: blobs})
            return [[o[i] for o in outs] for i in range(len(blobs))]
        per_image = []
        for blob in blobs:
            outs = self.session.run(self.output_names, {self.input_name: blob[None]})
            per_image.append([o[0] if self.batched else o for o in outs])
        return per_image

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        frames = as_batch(frames)
        canvases, scales = zip(*(letterbox(f, self.input_size) for f in frames))
        blobs = (np.stack(canvases).astype(np.float32) - INPUT_MEAN) / INPUT_STD
        blobs = np.ascontiguousarray(blobs.transpose(0, 3, 1, 2))
        results = []
        for frame, outs, scale in zip(frames, self._run(blobs), scales):
            boxes, scores, kps = self._decode(outs, scale)
            dets = []
            for i in range(len(boxes)):
                lm5 = kps[i] if kps is not None else _centre_points(boxes[i])
                lm68 = self._lm.predict(frame, box_from_lm5(lm5)) if self._lm is not None else None
                dets.append(Detection(*map(float, boxes[i]), score=float(scores[i]), lm5=lm5, lm68=lm68))
            results.append(dets)
        return results


def _centre_points(box: np.ndarray) -> np.ndarray:

    return lm5_from_box(box)
