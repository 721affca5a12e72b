"""The registry of standard weight files: where each comes from, how to check it, where it lives.

Files live in $KLING_WEIGHTS (kling.paths.weights_dir()). Where the publisher states a hash we check it
(pytorch-fid names its file after the sha256 prefix, as torch.hub does); where none is published the first
verified copy is pinned in `weights.lock.json` beside the files (trust on first use) and every later load
is checked against that pin. Every metric records the sha256 of the exact file it used, so numbers from
different files are never ranked together.
"""

from __future__ import annotations

import dataclasses

import json
import shutil
import urllib.error
import urllib.request
import zipfile
from functools import lru_cache
from pathlib import Path

from kling.atomic import atomic_path, atomic_write_json
from kling.hashing import file_sha256
from kling.paths import weights_dir

LOCK_NAME = "weights.lock.json"


@dataclasses.dataclass(frozen=True)
class WeightFile:
    name: str
    filename: str
    url: str
    format: str
    description: str
    used_by: str
    sha256: str | None = None  # full published hash, when there is one
    sha256_prefix: str | None = None  # torch.hub-style hash prefix carried in the file name
    archive_member: str | None = None  # the file inside a zip download

    @property
    def fetch_command(self) -> str:
        return f"kling weights fetch {self.name}"

    def path(self, root: Path | None = None) -> Path:
        return (root or weights_dir()) / self.filename


class WeightsUnavailable(Exception):
    """A standard weight file is missing or fails its check; carries the reason and the fix."""

    def __init__(self, reason: str, fetch_command: str):
        super().__init__(f"{reason} (fetch it with: {fetch_command})")
        self.reason = reason
        self.fetch_command = fetch_command


_BUFFALO_L = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"

REGISTRY: dict[str, WeightFile] = {
    w.name: w
    for w in [
        WeightFile(
            name="syncnet_v2",
            filename="syncnet_v2.model",
            url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
            format="torch state dict: netcnnaud.*, netfcaud.*, netcnnlip.*, netfclip.*",
            description="SyncNet v2 (Chung & Zisserman 2016), joonson/syncnet_python",
            used_by="Sync-C / Sync-D",
        ),
        WeightFile(
            name="arcface_w600k_r50",
            filename="w600k_r50.onnx",
            url=_BUFFALO_L,
            archive_member="w600k_r50.onnx",
            format="ONNX, input (N,3,112,112) in [-1,1], output (N,512)",
            description="ArcFace R50 trained on WebFace600K, insightface buffalo_l",
            used_by="identity similarity (CSIM)",
        ),
        WeightFile(
            name="scrfd_10g",
            filename="det_10g.onnx",
            url=_BUFFALO_L,
            archive_member="det_10g.onnx",
            format="ONNX, input (1,3,640,640), 9 outputs (scores, boxes, 5 keypoints at strides 8/16/32)",
            description="SCRFD-10GF face detector, insightface buffalo_l",
            used_by="face detection (curation, identity)",
        ),
        WeightFile(
            name="inception_pt_fid",
            filename="pt_inception-2015-12-05-6726825d.pth",
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            sha256_prefix="6726825d",
            format="torch state dict of pytorch-fid's FIDInceptionV3",
            description="Inception v3 (TF 2015-12-05 graph) ported by pytorch-fid",
            used_by="FID",
        ),
        WeightFile(
            name="i3d_kinetics400",
            filename="i3d_pretrained_400.pt",
            url="https://onedrive.live.com/download?cid=78EEF3EB6AE7DBCB&resid=78EEF3EB6AE7DBCB%21199&authkey=AApKdFHPXzWLNyI",
            format="torch state dict of InceptionI3d(400) (VideoGPT / common_metrics_on_video_quality)",
            description="I3D trained on Kinetics-400",
            used_by="FVD",
        ),
        WeightFile(
            name="i3d_torchscript",
            filename="i3d_torchscript.pt",
            url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            format="TorchScript module (StyleGAN-V FVD detector)",
            description="I3D Kinetics-400, StyleGAN-V's torchscript export",
            used_by="FVD (StyleGAN-V variant)",
        ),
        # Avatar model (kling.models). A diffusers-format folder is anchored at its config.json; the loader
        # then checks the index JSON and every shard it names (fetch the whole folder, e.g. with
        # `huggingface-cli download <repo> --local-dir $KLING_WEIGHTS/<repo name>`).
        *[
            WeightFile(
                name=name,
                filename=f"{repo}/{sub}/config.json",
                url=f"https://huggingface.co/Wan-AI/{repo}/resolve/main/{sub}/config.json",
                format=fmt,
                description=f"{repo} {sub} (diffusers format)",
                used_by=use,
            )
            for name, repo, sub, fmt, use in [
                ("wan21_t2v_1_3b", "Wan2.1-T2V-1.3B-Diffusers", "transformer",
                 "diffusers WanTransformer3DModel: config.json + safetensors (sharded with index JSON)", "avatar model (wan2.1-t2v-1.3b)"),
                ("wan21_i2v_14b_480p", "Wan2.1-I2V-14B-480P-Diffusers", "transformer",
                 "diffusers WanTransformer3DModel: config.json + sharded safetensors + index JSON", "avatar model (wan2.1-i2v-14b)"),
                ("wan21_flf2v_14b_720p", "Wan2.1-FLF2V-14B-720P-diffusers", "transformer",
                 "diffusers WanTransformer3DModel: config.json + sharded safetensors + index JSON", "avatar model (wan2.1-flf2v-14b)"),
                ("wan21_vae", "Wan2.1-I2V-14B-480P-Diffusers", "vae",
                 "diffusers AutoencoderKLWan: config.json + diffusion_pytorch_model.safetensors", "avatar model VAE (paper shapes)"),
                ("wan21_umt5", "Wan2.1-I2V-14B-480P-Diffusers", "text_encoder",
                 "transformers UMT5EncoderModel: config.json + sharded safetensors (tokenizer/ beside it)", "avatar model text (paper shapes)"),
                ("wan21_clip_vision", "Wan2.1-I2V-14B-480P-Diffusers", "image_encoder",
                 "transformers CLIPVisionModel: config.json + model.safetensors (image_processor/ beside it)", "avatar model reference tokens (paper shapes)"),
            ]
        ],
        WeightFile(
            name="wav2vec2_base_960h",
            filename="wav2vec2-base-960h/model.safetensors",
            url="https://huggingface.co/facebook/wav2vec2-base-960h/resolve/main/model.safetensors",
            format="safetensors state dict of transformers Wav2Vec2ForCTC (encoder under wav2vec2.*)",
            description="wav2vec 2.0 base, LibriSpeech 960h (facebook/wav2vec2-base-960h)",
            used_by="avatar model audio features (paper shapes)",
        ),
        WeightFile(
            name="wav2vec2_base_960h_config",
            filename="wav2vec2-base-960h/config.json",
            url="https://huggingface.co/facebook/wav2vec2-base-960h/resolve/main/config.json",
            format="transformers Wav2Vec2Config JSON",
            description="config of facebook/wav2vec2-base-960h",
            used_by="avatar model audio features (paper shapes)",
        ),
    ]
}


def get_weight(name: str) -> WeightFile:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown weight {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def _lock_path(root: Path) -> Path:
    return root / LOCK_NAME


def _read_lock(root: Path) -> dict[str, str]:
    path = _lock_path(root)
    return json.loads(path.read_text()) if path.exists() else {}


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def sha256_of(path: str | Path) -> str:
    """sha256 of a file, cached on (path, size, mtime) so repeated loads do not re-read large files."""
    st = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@dataclasses.dataclass(frozen=True)
class Verification:
    name: str
    path: Path
    present: bool
    ok: bool
    sha256: str | None
    detail: str


def verify(name: str, root: Path | None = None, pin: bool = True) -> Verification:
    """Check a placed file against the published hash, else against (or into) the local pin."""
    w = get_weight(name)
    root = root or weights_dir()
    path = w.path(root)
    if not path.exists():
        return Verification(name, path, False, False, None, f"missing: {path}")
    digest = sha256_of(path)
    if w.sha256:
        ok = digest == w.sha256
        return Verification(name, path, True, ok, digest, "matches published sha256" if ok else f"sha256 {digest} != published {w.sha256}")
    if w.sha256_prefix and not digest.startswith(w.sha256_prefix):
        return Verification(name, path, True, False, digest, f"sha256 {digest[:12]}... does not start with {w.sha256_prefix} (the file name's hash)")
    lock = _read_lock(root)
    pinned = lock.get(name)
    if pinned is None:
        if pin:
            lock[name] = digest
            atomic_write_json(_lock_path(root), lock)
        note = "matches the file name's hash prefix; " if w.sha256_prefix else "no published hash; "
        return Verification(name, path, True, True, digest, note + ("pinned now in " + LOCK_NAME if pin else "not pinned"))
    ok = pinned == digest
    return Verification(name, path, True, ok, digest, "matches local pin" if ok else f"sha256 {digest} != pinned {pinned} in {LOCK_NAME}")


def resolve(name: str, path: str | Path | None = None) -> Path:
    """Path of a usable weight file, or WeightsUnavailable saying why and how to fetch it.

    An explicit `path` (a user's own copy, or a file a test made) is used as given: its sha256 is
    recorded by the caller in every output, so it can never pass for the official file.
    """
    w = get_weight(name)
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise WeightsUnavailable(f"{w.name}: no file at {p}", w.fetch_command)
        return p
    v = verify(name)
    if not v.present:
        raise WeightsUnavailable(f"{w.name} weights missing ({w.filename} not in {v.path.parent})", w.fetch_command)
    if not v.ok:
        raise WeightsUnavailable(f"{w.name} weights fail verification: {v.detail}", w.fetch_command)
    return v.path


def fetch(name: str, root: Path | None = None, timeout: float = 30.0, progress=None) -> Verification:
    """Download a weight file into the weights dir (atomically), then verify it.

    Raises RuntimeError with a message naming the URL and the manual alternative when offline.
    """
    w = get_weight(name)
    root = root or weights_dir()
    dest = w.path(root)
    if dest.exists():
        return verify(name, root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        resp = urllib.request.urlopen(w.url, timeout=timeout)  # noqa: S310 - fixed registry URLs
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RuntimeError(
            f"cannot download {w.name} from {w.url}: {exc}. This machine may be offline: download it by hand, "
            f"place {w.filename} at {dest} and run `kling weights verify {w.name}`."
        ) from exc
    total = int(resp.headers.get("Content-Length") or 0)
    with atomic_path(dest if not w.archive_member else dest.with_suffix(".zip.part")) as tmp:
        with open(tmp, "wb") as out:
            while block := resp.read(1 << 20):
                out.write(block)
                if progress:
                    progress(len(block), total)
        if w.archive_member:
            with zipfile.ZipFile(tmp) as zf:
                member = next((m for m in zf.namelist() if m.endswith(w.archive_member)), None)
                if member is None:
                    raise RuntimeError(f"{w.url} has no {w.archive_member}")
                with zf.open(member) as src, atomic_path(dest) as tmp_dest, open(tmp_dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return verify(name, root)


def describe(name: str, root: Path | None = None) -> dict:
    """One registry row for `kling weights list` and for output metadata."""
    w = get_weight(name)
    path = w.path(root)
    row = dataclasses.asdict(w) | {"path": str(path), "present": path.exists(), "fetch_command": w.fetch_command}
    return row


__all__ = [
    "REGISTRY", "WeightFile", "WeightsUnavailable", "Verification", "get_weight", "resolve", "verify", "fetch",
    "describe", "sha256_of",
]
