"""Checkpoints of the avatar model.

Official weights: a diffusers-format Wan folder (`transformer/` with config.json, sharded
`diffusion_pytorch_model-0000k-of-0000n.safetensors` and their `.index.json`; `vae/`) loads unchanged
through diffusers' from_pretrained. Missing files stop with WeightsUnavailable naming the fetch command.

Our checkpoints (one folder per step): model.safetensors (the whole AvatarModel; on a frozen official backbone
only what trains, AvatarModel.checkpoint_keys), ema.safetensors,
optimizer.safetensors (tensors) + meta.json (size, step, optimizer param groups, config, hashes).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from safetensors.torch import load_file, save_file

from kling.atomic import atomic_path, atomic_write_json
from kling.hashing import file_sha256
from kling.models.avatar import AvatarModel, PretrainedEncoders
from kling.models.registry import ModelSize, get_size

INDEX = "diffusion_pytorch_model.safetensors.index.json"
SINGLE = "diffusion_pytorch_model.safetensors"


def check_diffusers_folder(folder: Path, weights_name: str | None = None) -> None:
    """Raise WeightsUnavailable unless `folder` holds a complete diffusers-format model (every shard present)."""
    from kling.weights import WeightsUnavailable, get_weight

    fetch = get_weight(weights_name).fetch_command if weights_name else "kling weights list"
    if not (folder / "config.json").is_file():
        raise WeightsUnavailable(f"no diffusers model at {folder} (config.json missing)", fetch)
    if (folder / INDEX).is_file():
        shards = sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise WeightsUnavailable(f"{folder}: {len(missing)} of {len(shards)} shards missing ({missing[0]}, ...)", fetch)
    elif not (folder / SINGLE).is_file():
        raise WeightsUnavailable(f"{folder}: neither {INDEX} nor {SINGLE}", fetch)


def load_wan_transformer(folder: str | Path, weights_name: str | None = None) -> WanTransformer3DModel:
    folder = Path(folder)
    check_diffusers_folder(folder, weights_name)
    return WanTransformer3DModel.from_pretrained(str(folder), local_files_only=True)


def load_encoders(size: ModelSize, device: str = "cpu") -> PretrainedEncoders:
    """The frozen encoders a size names (umT5 text, wav2vec2 audio, CLIP vision reference tokens), each from its
    official files under $KLING_WEIGHTS, on `device`; WeightsUnavailable with the fetch command when one is missing."""
    from kling.models.audio import Wav2Vec2Features, resolve_wav2vec2
    from kling.models.image import ClipImageTokens
    from kling.models.text import UMT5Embedder
    from kling.weights import resolve

    encoders = PretrainedEncoders()
    if size.text["kind"] == "umt5":  # <repo>/text_encoder/config.json, the tokenizer in <repo>/tokenizer/
        encoders.text = UMT5Embedder(resolve(size.text["weights"]).parent.parent, device)
    if size.audio["kind"] == "wav2vec2":
        encoders.audio = Wav2Vec2Features(resolve_wav2vec2(size.audio["weights"])).to(device)
    if size.image["kind"] == "clip":  # <repo>/image_encoder/config.json, its processor in <repo>/image_processor/
        encoders.image = ClipImageTokens(resolve(size.image["weights"]).parent.parent, device)
    return encoders


def avatar_from_official(size: ModelSize | str, folder: str | Path | None = None,
                         encoders: PretrainedEncoders | None = None, device: str = "cpu") -> AvatarModel:
    """The avatar model on an official Wan transformer (diffusers folder; default: the registry's file) with the
    pretrained encoders its size names (default: from their registry files), on `device`."""
    from kling.weights import resolve

    size = get_size(size) if isinstance(size, str) else size
    if folder is None:
        if not size.weights:
            raise ValueError(f"{size.name} has no official weights; it trains from scratch")
        folder = resolve(size.weights).parent  # the index JSON's folder
    transformer = load_wan_transformer(folder, size.weights)
    encoders = encoders if encoders is not None else load_encoders(size, device)
    return AvatarModel(size, transformer, encoders).to(device)


def new_avatar_model(size: ModelSize | str, device: str = "cpu") -> AvatarModel:
    """A size's model before our training: from scratch (`tiny`, seeded by the caller), or its official backbone
    and encoders (never random weights in their place: WeightsUnavailable names the fetch command), on `device`."""
    size = get_size(size) if isinstance(size, str) else size
    return avatar_from_official(size, device=device) if size.weights else AvatarModel(size).to(device)


# -- our checkpoints ------------------------------------------------------------------------------------
def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata={k: str(v) for k, v in (meta or {}).items()})


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {f"state.{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v))
               for i, st in sd["state"].items() for k, v in st.items()}
    return tensors, {"param_groups": sd["param_groups"]}


def optimizer_state(tensors: dict[str, torch.Tensor], groups: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        _, i, k = key.split(".", 2)
        state.setdefault(int(i), {})[k] = v
    return {"state": state, "param_groups": groups["param_groups"]}


def save_checkpoint(folder: str | Path, model: torch.nn.Module, ema: dict[str, torch.Tensor] | None,
                    opt: torch.optim.Optimizer | None, meta: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = model.checkpoint_state() if isinstance(model, AvatarModel) else model.state_dict()
    _save_tensors(folder / "model.safetensors", state)
    if ema is not None:
        _save_tensors(folder / "ema.safetensors", ema)
    if opt is not None:
        tensors, groups = optimizer_tensors(opt)
        _save_tensors(folder / "optimizer.safetensors", tensors)
        meta = meta | {"optimizer": groups}
    meta = meta | {"model_sha256": file_sha256(folder / "model.safetensors")}
    atomic_write_json(folder / "meta.json", meta)  # written last: a folder with meta.json is complete
    return folder


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def load_training_state(folder: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict:
    """Put a `save_checkpoint` folder's weights and optimiser state back (to resume training); its meta.json."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    tensors = load_tensors(folder / "model.safetensors")
    if isinstance(model, AvatarModel):
        model.load_checkpoint_state(tensors)
    else:
        model.load_state_dict(tensors)
    opt.load_state_dict(optimizer_state(load_tensors(folder / "optimizer.safetensors"), meta["optimizer"]))
    return meta


def checkpoint_hash(folder: str | Path, ema: bool = True) -> str:
    folder = Path(folder)
    name = "ema.safetensors" if ema and (folder / "ema.safetensors").is_file() else "model.safetensors"
    return file_sha256(folder / name)
