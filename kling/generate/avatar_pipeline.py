"""Audio-driven avatar generation with the avatar model: a pipeline that reads top to bottom (diffusers style).

    1. frame the face     find the face in the reference (and first / last) image, crop as in training
    2. encode text        the prompt and the empty prompt (classifier-free guidance)
    3. encode audio       one token per video frame, and the null audio
    4. reference tokens   the framed reference through the VAE (image tokens); optional corrupted negative
    5. windows            the audio's frames split into windows of the model's length (or config.window),
                          each starting from a known frame (mask "first"): the last frame of the window
                          before (anchor "previous") or the first frame again (anchor "reference"); the
                          first window from the given first frame (default: the reference), the last
                          one ending exactly on --last (mask "first_last")

Steps 1-4 (`prepare`), one window (`window`) and one face re-rendered (`refine`) are public: the cascade
(kling.generate.cascade) composes them into blueprint, keyframes, sub-clips and transitions.
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
from kling.config import compute_device
from kling.io.audio import fit_length
from kling.hashing import config_hash
from kling.models.avatar import AvatarModel
from kling.models.checkpoint import checkpoint_hash, load_tensors, new_avatar_model
from kling.models.conditioning import known_frames, mask_channels, masked_video
from kling.models.framing import crop, face_window, paste
from kling.models.registry import get_size
from kling.models.vae import decode, encode, load_vae, stitch_latents, to_frames, to_video
from kling.train.avatar import TRAINER_VERSION


STITCHES = ("pixels", "latents")  # how consecutive windows are joined (AvatarPipeline.windows)


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


def load_checkpoint(folder: str | Path, ema: bool = True, device: str | None = None) -> AvatarCheckpoint:
    """A trained avatar checkpoint folder (step-XXXXXX with meta.json), a run folder or the model's root under
    Layout.training("avatar") (each followed through its latest.json), on `device` (default $KLING_DEVICE, else
    cpu)."""
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
    if meta.get("trainer_version", TRAINER_VERSION) != TRAINER_VERSION:
        raise ValueError(f"{folder}: made by avatar trainer version {meta['trainer_version']}, whose model this code "
                         f"no longer builds (version {TRAINER_VERSION}); retrain it (the training/avatar asset, or "
                         "`kling demo`)")
    size = get_size(meta["size"])
    device = device or compute_device()
    model = new_avatar_model(size, device)  # a paper shape: its official backbone and encoders, then our layers
    weights = folder / ("ema.safetensors" if ema and (folder / "ema.safetensors").is_file() else "model.safetensors")
    model.load_checkpoint_state(load_tensors(weights))
    vae = load_vae((folder / meta.get("vae_dir", "../vae")).resolve()).to(device)
    sha = checkpoint_hash(folder, ema)
    if size.weights:  # our file holds only the trained layers: the backbone's pinned config.json joins the identity
        from kling.weights import resolve, sha256_of

        sha = config_hash({"trained": sha, size.weights: sha256_of(resolve(size.weights))})
    return AvatarCheckpoint(model.eval(), vae.eval(), folder, sha, meta)


def corrupt(face: np.ndarray) -> np.ndarray:
    """The negative reference: heavily blurred and desaturated (identity and detail gone, layout kept)."""
    blurred = cv2.GaussianBlur(face, (0, 0), sigmaX=face.shape[0] / 16)
    grey = blurred.mean(axis=2, keepdims=True)
    return (0.5 * blurred + 0.5 * grey).astype(np.uint8)


@dataclasses.dataclass
class Conditions:
    """Steps 1-4 for one reference and one audio track: all a window needs besides its known frames."""
    window: np.ndarray  # the face window in the reference image (x0, y0, side)
    reference: np.ndarray  # the framed reference (side, side, 3) uint8
    text: torch.Tensor
    text_null: torch.Tensor  # the empty prompt, or the negative prompt
    image_tok: torch.Tensor | None  # None: a text-to-video backbone (the reference is only a known frame)
    image_neg: torch.Tensor | None
    audio_tok: torch.Tensor  # (1, frames, dim): one token per video frame, silence past the audio's end
    audio_null: torch.Tensor
    n_frames: int  # video frames the audio spans


class AvatarPipeline:
    def __init__(self, checkpoint: AvatarCheckpoint, detector=None):
        self.ckpt = checkpoint
        self.model, self.vae, self.size = checkpoint.model, checkpoint.vae, checkpoint.model.size
        self.device = checkpoint.model.null_audio.device
        self.detector = detector

    def window_length(self, config: GenerateConfig) -> int:
        return config.window or self.size.frames

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
    def prepare(self, image: np.ndarray, audio: np.ndarray, prompt: str = "", config: GenerateConfig = GenerateConfig(),
                window_box=None, negative_prompt: str = "", token_frames: int | None = None) -> Conditions:
        """Steps 1-4. audio: 16 kHz mono float32. Its tokens cover `token_frames` frames (default: the audio's
        frames rounded up to whole windows), silence past its end, for windows that reach past the end."""
        side = self.size.size
        n_frames = max(1, int(round(len(audio) / SAMPLES_PER_FRAME)))
        audio = fit_length(np.asarray(audio, np.float32), n_frames * SAMPLES_PER_FRAME)
        # 1. frame the face
        window = face_window(self.face_box(image) if window_box is None else window_box)
        # 2. encode text (conditional, and the empty or negative prompt)
        text, text_null = self.model.text_embeddings([prompt]), self.model.text_embeddings([negative_prompt])
        # 3. encode audio: one token per frame over the whole track (the encoder sees all of it at once)
        total = max(token_frames or 0, self.n_windows(n_frames, config) * (self.window_length(config) - 1) + 1)
        padded = torch.from_numpy(fit_length(audio, total * SAMPLES_PER_FRAME))[None].to(self.device)
        audio_tok, audio_null = self.model.audio_tokens(padded, total, 1), self.model.audio_tokens(None, total, 1)
        # 4. reference image tokens (and the corrupted negative)
        ref, image_tok, image_neg = self._reference(image, window, side, config)
        return Conditions(window, ref, text, text_null, image_tok, image_neg, audio_tok, audio_null, n_frames)

    def _reference(self, image: np.ndarray, window: np.ndarray, side: int, config: GenerateConfig):
        ref = crop(image, window, side)
        image_tok = self.reference_tokens(ref)
        return ref, image_tok, self.reference_tokens(corrupt(ref)) if config.negative_frame else image_tok

    def reference_tokens(self, face: np.ndarray) -> torch.Tensor | None:
        latent = encode(self.vae, to_video(face[None])) if self.size.image["kind"] == "vae_patches" else None
        return self.model.image_tokens(face[None], latent)

    def trained_sides(self) -> tuple[int, ...] | None:
        """The frame sides this checkpoint was trained at (kling.train.avatar's `sides`, else its size's own); None
        for a paper shape, whose official backbone was trained at many."""
        if self.size.weights:
            return None
        return tuple(int(x) for x in self.ckpt.meta.get("config", {}).get("sides") or ()) or (self.size.size,)

    @torch.no_grad()
    def at_side(self, cond: Conditions, image: np.ndarray, side: int, config: GenerateConfig) -> Conditions:
        """The same conditions with the reference framed at `side` pixels (and its image tokens): windows started
        from it generate at that side (the cascade's low-resolution blueprint). ValueError for a side the
        checkpoint was not trained at."""
        sides = self.trained_sides()
        if sides is not None and side not in sides:
            raise ValueError(f"{self.ckpt.folder}: trained at sides {list(sides)}, not {side}; train it with "
                             f"`sides` including {side} (kling.train.avatar.AvatarTrainConfig)")
        ref, image_tok, image_neg = self._reference(image, cond.window, side, config)
        return dataclasses.replace(cond, reference=ref, image_tok=image_tok, image_neg=image_neg)

    def with_prompt(self, cond: Conditions, prompt: str, negative_prompt: str = "") -> Conditions:
        """The same conditions under another prompt (a shot's), its negative prompt as the unconditional text."""
        with torch.no_grad():
            return dataclasses.replace(cond, text=self.model.text_embeddings([prompt]),
                                       text_null=self.model.text_embeddings([negative_prompt]))

    @torch.no_grad()
    def __call__(self, image: np.ndarray, audio: np.ndarray, prompt: str = "", first: np.ndarray | None = None,
                 last: np.ndarray | None = None, config: GenerateConfig = GenerateConfig(),
                 window_box=None) -> tuple[np.ndarray, dict]:
        """image: RGB uint8 reference (any size); audio: 16 kHz mono float32. Returns (frames (N, H, W, 3) at
        the reference image's size, info)."""
        self.check(config)
        side = self.size.size
        cond = self.prepare(image, audio, prompt, config, window_box)
        first_face = crop(first, cond.window, side) if first is not None else cond.reference
        last_face = crop(last, cond.window, side) if last is not None else None
        # 5.-6. windows over the audio's frames
        gen = torch.Generator().manual_seed(config.seed)
        faces = self.windows(cond, np.arange(cond.n_frames), first_face, last_face, gen, config)
        # 7. paste back into the reference image
        frames = np.stack([paste(image, f, cond.window) for f in faces])
        starts = self.window_starts(cond.n_frames, config, last_face is not None)
        info = {"checkpoint": str(self.ckpt.folder), "checkpoint_sha256": self.ckpt.sha256, "size": self.size.name,
                "frames": int(cond.n_frames), "windows": len(starts), "joins": starts[1:],
                "window": [float(x) for x in cond.window], "config": dataclasses.asdict(config), "prompt": prompt,
                "first": first is not None, "last": last is not None}
        return frames, info

    def check(self, config: GenerateConfig) -> None:
        if config.anchor not in ("previous", "reference"):
            raise ValueError(f"anchor must be 'previous' or 'reference', not {config.anchor!r}")
        length, stride = self.window_length(config), self.size.temporal_stride
        if (length - 1) % stride or length < stride + 1:
            raise ValueError(f"window of {length} frames: must be {stride}k + 1 (the VAE's temporal stride)")

    def n_windows(self, n: int, config: GenerateConfig) -> int:
        return max(1, -(-(n - 1) // (self.window_length(config) - 1)))

    def window_starts(self, n: int, config: GenerateConfig, last_known: bool = False) -> list[int]:
        """First frame of each window over `n` frames: a window starts on the last frame of the one before (its
        known first frame), so a window's start is where two generated pieces meet; with a known last frame the
        last window ends exactly on frame n - 1."""
        hop = self.window_length(config) - 1
        starts = [w * hop for w in range(self.n_windows(n, config))]
        if last_known:
            starts[-1] = n - self.window_length(config)
        return starts

    # 5. windows --------------------------------------------------------------------------------------------
    def windows(self, cond: Conditions, positions: np.ndarray, first_face: np.ndarray, last_face: np.ndarray | None,
                gen: torch.Generator, config: GenerateConfig, stitch: str = "pixels") -> np.ndarray:
        """Faces (n, side, side, 3) at the given video-frame positions (consecutive, or strided for a low frame
        rate), window after window, each starting from a known frame (mask "first"): the last frame of the
        window before (anchor "previous") or `first_face` again (anchor "reference"). With `last_face` the
        last window ends on it (mask "first_last"), placed to end exactly on the last position.

        stitch "pixels": each window decoded alone, the windows joined at their shared frame. "latents": windows
        that meet on the VAE's temporal grid are joined in latent space (the next window's known first latent
        dropped) and decoded as one stream, so the causal decoder carries the motion across each join; memory
        grows with the span, so this is for bounded spans (the cascade's sub-clips)."""
        if stitch not in STITCHES:
            raise ValueError(f"stitch must be one of {STITCHES}, not {stitch!r}")
        n, length = len(positions), self.window_length(config)
        if last_face is not None and n < length:
            raise ValueError(f"a known last frame needs at least {length} frames ({n} given)")
        out = np.zeros((n, *first_face.shape), np.uint8)
        out[0] = first_face
        starts = self.window_starts(n, config, last_face is not None)
        runs: list[tuple[int, list[torch.Tensor]]] = []  # (first frame, latents of consecutive windows)
        for w, s in enumerate(starts):
            video = np.zeros((length, *first_face.shape), np.uint8)
            video[0] = out[s] if config.anchor == "previous" or w == 0 else first_face
            kind = "first"
            if w == len(starts) - 1 and last_face is not None:
                video[-1], kind = last_face, "first_last"
            index = positions[s: s + length]
            index = np.concatenate([index, index[-1] + np.arange(1, length - len(index) + 1)])  # silence past the end
            latents = self.window_latents(cond, video, known_frames(kind, length), index, gen, config)
            if stitch == "pixels" or config.anchor == "previous":  # the next window starts from this decode
                frames = to_frames(decode(self.vae, latents))
                take = min(length, n - s)
                out[s + 1: s + take] = frames[1:take]  # the known first frame is given, not regenerated
            if stitch == "latents" and runs and s == runs[-1][0] + (length - 1) * len(runs[-1][1]):
                runs[-1][1].append(latents)  # starts on the run's last frame, on the VAE's temporal grid
            elif stitch == "latents":
                runs.append((s, [latents]))
        for s, parts in runs:  # each run decoded as one stream
            frames = to_frames(decode(self.vae, stitch_latents(parts)))
            take = min(len(frames), n - s)
            out[s + 1: s + take] = frames[1:take]
        return out

    def window(self, cond: Conditions, video: np.ndarray, known: torch.Tensor, index: np.ndarray,
               gen: torch.Generator, config: GenerateConfig) -> np.ndarray:
        """One window: `video` (length, side, side, 3) holds the known frames (`known` mask), `index` the
        video-frame position of each frame (its audio token). Returns the decoded window."""
        return to_frames(decode(self.vae, self.window_latents(cond, video, known, index, gen, config)))

    def window_latents(self, cond: Conditions, video: np.ndarray, known: torch.Tensor, index: np.ndarray,
                       gen: torch.Generator, config: GenerateConfig, init: torch.Tensor | None = None,
                       strength: float = 1.0) -> torch.Tensor:
        """`window`'s normalised latents, before decoding. `init`: latents to start from, noised to `strength`
        of the schedule (SDEdit; None: pure noise)."""
        cond_lat = encode(self.vae, masked_video(to_video(video), known))
        h, wd = cond_lat.shape[-2:]
        mask = mask_channels(known, self.size.temporal_stride, h, wd)[None].to(self.device)
        condition = torch.cat([mask, cond_lat], dim=1)
        a = torch.as_tensor(index, dtype=torch.long)
        return self._denoise(condition, cond, cond.audio_tok[:, a], cond.audio_null[:, a], gen, config, init, strength)

    @torch.no_grad()
    def refine(self, cond: Conditions, face: np.ndarray, index: np.ndarray, strength: float, gen: torch.Generator,
               config: GenerateConfig) -> np.ndarray:
        """`face` re-rendered from the reference under `cond`'s prompt and audio: the last frame of a window at
        positions `index` (ending on the face's) that starts on the reference (known, mask "first"), started
        from a still of the face noised to `strength` of the schedule (SDEdit), so the model keeps the face's
        pose and expression and redraws identity and detail from the reference. (With nothing known, mask "none",
        the tiny demo model smears the face: SSIM to the ground truth 0.50 -> 0.39 over the demo's 35 keyframes at
        strength 0.3; this way 0.50 -> 0.51 at 0.2.)"""
        length = self.window_length(config)
        if len(index) != length or index[0] < 0:
            raise ValueError(f"refine needs the {length} non-negative positions of a window ending on the face")
        still = np.repeat(face[None], length, axis=0)
        still[0] = cond.reference  # the known first frame; the mask hides the rest from the condition
        latents = self.window_latents(cond, still, known_frames("first", length), index, gen, config,
                                      init=encode(self.vae, to_video(still)), strength=strength)
        return to_frames(decode(self.vae, latents))[-1]

    # 6. denoise --------------------------------------------------------------------------------------------
    def _denoise(self, condition, cond: Conditions, audio, audio_null, gen, config, init=None, strength=1.0):
        """The three guidance branches (full; without audio; without audio, text and with the negative
        reference) go through the model as one batch of three. With `init`, the last `strength` of the schedule
        from `init` noised to its first step (diffusers' image-to-image)."""
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=config.shift)
        f = self.size.latent_frames(audio.shape[1])
        hw = condition.shape[-1]
        # the noise is drawn on the CPU on every device, so one seed names one starting point
        latents = torch.randn((1, self.size.z_dim, f, hw, hw), generator=gen).to(self.device)
        scheduler.set_timesteps(config.steps, device=self.device)
        timesteps = scheduler.timesteps
        if init is not None:
            if not 0.0 < strength <= 1.0:
                raise ValueError(f"strength must be in (0, 1], not {strength}")
            begin = config.steps - max(1, int(round(config.steps * strength)))
            timesteps = timesteps[begin:]
            scheduler.set_begin_index(begin)
            latents = scheduler.scale_noise(init.to(self.device), timesteps[:1], latents)
        cond3 = condition.expand(3, -1, -1, -1, -1)
        text3 = torch.cat([cond.text, cond.text, cond.text_null])
        image3 = None if cond.image_tok is None else torch.cat([cond.image_tok, cond.image_tok, cond.image_neg])
        audio3 = torch.cat([audio, audio_null, audio_null])
        for t in timesteps:
            full, no_audio, none = self.model(latents.expand(3, -1, -1, -1, -1), t.expand(3).float(), cond3, text3,
                                              image3, audio3).chunk(3)
            v = none + config.text_scale * (no_audio - none) + config.audio_scale * (full - no_audio)
            latents = scheduler.step(v, t, latents, return_dict=False)[0]
        return latents
