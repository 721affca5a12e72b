"""Face-identity backbones for CSIM: ArcFace (insightface buffalo_l ``w600k_r50.onnx``) and dlib's ResNet.

ArcFace is insightface's own ``model_zoo.ArcFaceONNX``:

- the crop is insightface's 112x112 5-point similarity warp ``norm_crop`` (kling.perception.faces.align);
- insightface reads images as BGR and calls ``cv2.dnn.blobFromImages(..., swapRB=True)``, so the network sees
  **RGB**; our frames are RGB, so the crops are handed to it as BGR;
- pixels are ``(x - 127.5) / 127.5``, unless the graph starts with its own ``Sub``/``Mul`` nodes (old MXNet
  exports), in which case insightface feeds raw pixels (mean 0, std 1);
- the output (512-d for w600k_r50) is L2-normalised here; similarity is the cosine (a dot product).

The weights come from the registry (``kling.weights.resolve("arcface_w600k_r50")``); when they are missing the
caller reports the metric ``unavailable`` with the registry's reason, never runs random weights.

dlib is the offline backbone (face_recognition_models ships its weights). Its numbers live on another scale
(same person ~0.99, different ~0.8) and are never ranked against ArcFace: every result names its backbone and
the weight file's sha256.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:
    from kling.perception.faces.detection import Detection

ARCFACE = "arcface"
DLIB = "dlib"
BACKBONES = (ARCFACE, DLIB)
ARCFACE_WEIGHT_NAME = "arcface_w600k_r50"
ARCFACE_INPUT_SIZE = 112


class BackboneUnavailable(Exception):
    """The backbone cannot run here (weights missing, hash mismatch); ``reason`` goes into the result."""

    def __init__(self, reason: str, fetch_command: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.fetch_command = fetch_command


class FaceBackbone(Protocol):
    name: str  # backbone id written into every row ("arcface_w600k_r50", "dlib_resnet_v1")
    sha256: str  # of the weight file actually loaded
    dim: int

    def embed(self, image: np.ndarray, faces: Sequence[Detection]) -> np.ndarray:
        """(len(faces), dim) float32, L2-normalised rows, for the faces (kling.perception.faces.detect.Detection) of an RGB
        uint8 ``image``."""
        ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def sha256_of(path: Path) -> str:
    from kling.weights import sha256_of as cached_sha256  # cached on (path, size, mtime)

    return cached_sha256(path)


class ArcFaceONNX:
    """ArcFace recogniser: insightface's own ``model_zoo.ArcFaceONNX`` on our onnxruntime session.

    insightface reads the graph's first nodes to choose the input normalisation (raw pixels for MXNet exports
    that normalise inside, else (x - 127.5) / 127.5) and feeds ``cv2.dnn.blobFromImages(..., swapRB=True)`` of
    BGR crops, i.e. RGB to the network: our crops are RGB, so they go in as BGR. Before handing the session to
    insightface we check the signature (one (N, 3, 112, 112) input, one (N, D) output), which its model router
    would not (it returns None, or another model class, for a graph of another shape)."""

    name = ARCFACE_WEIGHT_NAME

    def __init__(self, model_path: str | Path, sha256: str | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        self.model_path = Path(model_path)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(self.model_path), sess_options=opts, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ValueError(f"cannot load ArcFace ONNX {self.model_path}: {exc}") from exc
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{self.model_path}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
        shape = list(inputs[0].shape)
        if len(shape) != 4 or shape[1] != 3 or shape[2] != ARCFACE_INPUT_SIZE or shape[3] != ARCFACE_INPUT_SIZE:
            raise ValueError(f"{self.model_path}: input shape {shape}, expected [N, 3, 112, 112]")
        out_shape = list(outputs[0].shape)
        if len(out_shape) != 2 or not isinstance(out_shape[1], int):
            raise ValueError(f"{self.model_path}: output shape {out_shape}, expected [N, D]")
        from insightface.model_zoo import ArcFaceONNX as InsightFaceArcFace

        self.model = InsightFaceArcFace(model_file=str(self.model_path), session=session)
        self.session = session
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.dim = int(out_shape[1])
        # A fixed batch dimension (e.g. 1) means one crop per run.
        self.max_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else 64
        self.input_mean, self.input_std = float(self.model.input_mean), float(self.model.input_std)
        self.sha256 = sha256 or sha256_of(self.model_path)

    def embed_crops(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Embeddings of already aligned crops, L2-normalised."""
        crops_rgb = np.asarray(crops_rgb)
        if crops_rgb.ndim == 3:
            crops_rgb = crops_rgb[None]
        if crops_rgb.shape[1:] != (ARCFACE_INPUT_SIZE, ARCFACE_INPUT_SIZE, 3):
            raise ValueError(f"ArcFace crops must be (n,112,112,3), got {crops_rgb.shape}")
        if not len(crops_rgb):
            return np.zeros((0, self.dim), np.float32)
        bgr = np.ascontiguousarray(crops_rgb[..., ::-1])
        out = [self.model.get_feat(list(bgr[i : i + self.max_batch])) for i in range(0, len(bgr), self.max_batch)]
        return l2_normalise(np.concatenate(out).reshape(len(crops_rgb), -1))

    def embed(self, image: np.ndarray, faces: Sequence[Detection]) -> np.ndarray:
        from kling.perception.faces.align import norm_crop

        if not len(faces):
            return np.zeros((0, self.dim), np.float32)
        crops = np.stack([norm_crop(image, f.lm5, ARCFACE_INPUT_SIZE) for f in faces])
        return self.embed_crops(crops)


def load_arcface(path: str | Path | None = None) -> ArcFaceONNX:
    """ArcFace from the weights registry (or an explicit file); raises BackboneUnavailable when missing.

    An explicit ``path`` (a user's copy, a file a test made) is used as given; its sha256 goes into every row,
    so it can never pass for the official file.
    """
    from kling.weights import WeightsUnavailable, resolve

    try:
        resolved = resolve(ARCFACE_WEIGHT_NAME, path=path)
    except WeightsUnavailable as exc:
        raise BackboneUnavailable(exc.reason, getattr(exc, "fetch_command", None)) from exc
    return ArcFaceONNX(resolved)


class DlibResNet:
    """dlib's face-recognition ResNet (128-d) through kling.perception.faces.embed, rows L2-normalised for cosine."""

    def __init__(self, model_path: str | Path | None = None):
        from kling.perception.faces.embed import DlibFaceEncoder

        self._encoder = DlibFaceEncoder(model_path)
        self.name = self._encoder.name
        self.dim = self._encoder.dim
        self.weight_path = self._encoder.model_path
        self.sha256 = self._encoder.backbone_sha256

    def embed(self, image: np.ndarray, faces: Sequence[Detection]) -> np.ndarray:
        if not len(faces):
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(self._encoder.embed(image, faces))


def load_backbone(name: str, weights_path: str | Path | None = None) -> FaceBackbone:
    """``arcface`` or ``dlib``; raises BackboneUnavailable with a reason when it cannot run here."""
    if name == ARCFACE:
        return load_arcface(weights_path)
    if name == DLIB:
        try:
            return DlibResNet()
        except (ImportError, FileNotFoundError, OSError) as exc:
            raise BackboneUnavailable(f"dlib backbone unavailable: {exc}") from exc
    raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
