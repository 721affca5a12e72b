"""Audio-driven avatar generation with the avatar model: a pipeline that reads top to bottom (diffusers style).

    1. frame the face     find the face in the reference (and first / last) image, crop as in training
    2. encode text        the prompt and the empty prompt (classifier-free guidance)
    3. encode audio       one token per video frame, and the null audio
    4. reference tokens   the framed reference through the VAE (image tokens); optional corrupted negative
    5. windows            the audio's frames split into windows of the model's length (or config.window),
                          each starting from a known frame (mask "first"): the last frame of the window
                          before (anchor "previous") or the first frame again (anchor "reference"); the
                          first window from the given first frame (default: the reference), the last
                          one ending on --last (mask "first_last")
    6. denoise            flow-matching Euler steps with guidance on audio and text (and negative frames)
    7. decode and paste   VAE decode, the generated window pasted back into the reference image

Same seed, same inputs, same machine and thread count => the same frames, bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from kling.clock import SAMPLES_PER_FRAME
from kling.io.audio import fit_length
from kling.models.avatar import AvatarModel, patch_tokens
from kling.models.checkpoint import checkpoint_hash, load_tensors
from kling.models.conditioning import known_frames, mask_channels, masked_video
from kling.models.framing import crop, face_window, paste
from kling.models.registry import get_size
from kling.models.vae import decode, encode, load_vae


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    steps: int = 20
    audio_scale: float = 3.0
    text_scale: float = 1.5
    negative_frame: bool = False  # Kling-Avatar 1.0: a corrupted reference in the unconditional branch
    shift: float = 3.0
    seed: int = 0
    window: int | None = None  # frames per window (4k + 1); default: the model size's `frames`
    anchor: str = "previous"  # each window's known first frame: "previous" window's last, or the "reference"


@dataclasses.dataclass
class AvatarCheckpoint:
    model: AvatarModel
    vae: object
    folder: Path
    sha256: str
    meta: dict


def load_checkpoint(folder: str | Path, ema: bool = True) -> AvatarCheckpoint:
    """A trained avatar checkpoint folder (step-XXXXXX with meta.json), a run folder or the model's root under
    Layout.training("avatar") (each followed through its latest.json)."""
    folder = Path(folder)
    for _ in range(2):  # a model's root -> its latest run -> that run's latest step
        if (folder / "meta.json").is_file():
            break
        if (folder / "latest.json").is_file():
            pointer = json.loads((folder / "latest.json").read_text())
            folder = folder / (pointer.get("checkpoint") or pointer["dir"])
        elif steps := sorted(p.parent for p in folder.glob("step-*/meta.json")):
            folder = steps[-1]
    if not (folder / "meta.json").is_file():
        raise FileNotFoundError(f"{folder}: not an avatar checkpoint (no meta.json); train one with the "
                                "training/avatar asset or kling.train.avatar.train_avatar")
    meta = json.loads((folder / "meta.json").read_text())
    model = AvatarModel(get_size(meta["size"]))
    weights = folder / ("ema.safetensors" if ema and (folder / "ema.safetensors").is_file() else "model.safetensors")
    model.load_state_dict(load_tensors(weights))
    vae = load_vae((folder / meta.get("vae_dir", "../vae")).resolve())
    return AvatarCheckpoint(model.eval(), vae.eval(), folder, checkpoint_hash(folder, ema), meta)


def _video(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)[None]


def _frames(video: torch.Tensor) -> np.ndarray:
    return video[0].add(1.0).mul(127.5).round().clamp(0, 255).byte().permute(1, 2, 3, 0).numpy()


def corrupt(face: np.ndarray) -> np.ndarray:
    """The negative reference: heavily blurred and desaturated (identity and detail gone, layout kept)."""
    blurred = cv2.GaussianBlur(face, (0, 0), sigmaX=face.shape[0] / 16)
    grey = blurred.mean(axis=2, keepdims=True)
    return (0.5 * blurred + 0.5 * grey).astype(np.uint8)


class AvatarPipeline:
    def __init__(self, checkpoint: AvatarCheckpoint, detector=None):
        self.ckpt = checkpoint
        self.model, self.vae, self.size = checkpoint.model, checkpoint.vae, checkpoint.model.size
        self.detector = detector

    # 1. frame the face ---------------------------------------------------------------------------------
    def face_box(self, image: np.ndarray) -> np.ndarray:
        from kling.perception.faces.detect import load_detector

        if self.detector is None:
            self.detector = load_detector("auto")
        dets = self.detector.detect(image[None])[0]
        if not dets:
            raise ValueError("no face found in the reference image")
        return max(dets, key=lambda d: d.area).box

    @torch.no_grad()
    def __call__(self, image: np.ndarray, audio: np.ndarray, prompt: str = "", first: np.ndarray | None = None,
                 last: np.ndarray | None = None, config: GenerateConfig = GenerateConfig(),
                 window_box=None) -> tuple[np.ndarray, dict]:
        """image: RGB uint8 reference (any size); audio: 16 kHz mono float32. Returns (frames (N, H, W, 3) at
        the reference image's size, info)."""
        if config.anchor not in ("previous", "reference"):
            raise ValueError(f"anchor must be 'previous' or 'reference', not {config.anchor!r}")
        side, length, stride = self.size.size, config.window or self.size.frames, self.size.temporal_stride
        if (length - 1) % stride:
            raise ValueError(f"window of {length} frames: must be {stride}k + 1 (the VAE's temporal stride)")
        n_frames = max(1, int(round(len(audio) / SAMPLES_PER_FRAME)))
        audio = fit_length(np.asarray(audio, np.float32), n_frames * SAMPLES_PER_FRAME)

        # 1. frame the face
        window = face_window(self.face_box(image) if window_box is None else window_box)
        ref = crop(image, window, side)
        first_face = crop(first, window, side) if first is not None else ref
        last_face = crop(last, window, side) if last is not None else None

        # 2. encode text (conditional and empty)
        text = self.model.text_embeddings([prompt])
        text_null = self.model.text_embeddings([""])

        # 3. encode audio: one token per frame, padded to whole windows
        hop = length - 1
        n_windows = max(1, -(-(n_frames - 1) // hop))
        total = n_windows * hop + 1
        padded = torch.from_numpy(fit_length(audio, total * SAMPLES_PER_FRAME))[None]
        audio_tok = self.model.audio_tokens(padded, total, 1)
        audio_null = self.model.audio_tokens(None, total, 1)

        # 4. reference image tokens (and the corrupted negative)
        patch = self.size.image.get("patch", 2)
        image_tok = patch_tokens(encode(self.vae, _video(ref[None])), patch)
        image_neg = patch_tokens(encode(self.vae, _video(corrupt(ref)[None])), patch) if config.negative_frame else image_tok

        # 5.-7. windows, each continuing from the last frame of the one before
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=config.shift)
        gen = torch.Generator().manual_seed(config.seed)
        out, prev = [], first_face
        for w in range(n_windows):
            video = np.zeros((length, side, side, 3), np.uint8)
            video[0] = prev
            kind = "first"
            if w == n_windows - 1 and last_face is not None:
                video[-1], kind = last_face, "first_last"
            known = known_frames(kind, length)
            cond_lat = encode(self.vae, masked_video(_video(video), known))
            h, wd = cond_lat.shape[-2:]
            condition = torch.cat([mask_channels(known, stride, h, wd)[None], cond_lat], dim=1)
            a = slice(w * hop, w * hop + length)
            latents = self._denoise(condition, text, text_null, image_tok, image_neg, audio_tok[:, a], audio_null[:, a],
                                    scheduler, gen, config)
            frames = _frames(decode(self.vae, latents))
            frames[0] = prev  # the known frame is given, not regenerated
            out.append(frames if w == 0 else frames[1:])
            prev = frames[-1] if config.anchor == "previous" else first_face
        faces = np.concatenate(out)[:n_frames]

        # 7. paste back into the reference image
        frames = np.stack([paste(image, f if f.shape[0] == side else cv2.resize(f, (side, side)), window) for f in faces])
        info = {"checkpoint": str(self.ckpt.folder), "checkpoint_sha256": self.ckpt.sha256, "size": self.size.name,
                "frames": int(n_frames), "windows": n_windows, "window": [float(x) for x in window],
                "config": dataclasses.asdict(config), "prompt": prompt,
                "first": first is not None, "last": last is not None}
        return frames, info

    # 6. denoise --------------------------------------------------------------------------------------------
    def _denoise(self, condition, text, text_null, image_tok, image_neg, audio, audio_null, scheduler, gen, config):
        """The three guidance branches (full; without audio; without audio, text and with the negative
        reference) go through the model as one batch of three."""
        f = self.size.latent_frames(audio.shape[1])
        hw = condition.shape[-1]
        latents = torch.randn((1, self.size.z_dim, f, hw, hw), generator=gen)
        scheduler.set_timesteps(config.steps)
        cond3 = condition.expand(3, -1, -1, -1, -1)
        text3 = torch.cat([text, text, text_null])
        image3 = torch.cat([image_tok, image_tok, image_neg])
        audio3 = torch.cat([audio, audio_null, audio_null])
        for t in scheduler.timesteps:
            full, no_audio, none = self.model(latents.expand(3, -1, -1, -1, -1), t.expand(3).float(), cond3, text3,
                                              image3, audio3).chunk(3)
            v = none + config.text_scale * (no_audio - none) + config.audio_scale * (full - no_audio)
            latents = scheduler.step(v, t, latents, return_dict=False)[0]
        return latents
