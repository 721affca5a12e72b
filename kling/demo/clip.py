"""One demo clip: a recipe entry -> audio, per-frame ground truth, and rendered frames.

Planning (audio, poses, mouth, shots) is separate from rendering so the ground truth is known before a
single pixel is drawn and frames can be streamed to the encoder in chunks (memory flat in length).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import cv2
import numpy as np

from kling.demo.face import Identity, Pose, render_frame
from kling.demo.raster import grain_bank, render_background
from kling.demo.motion import blink_track, pose_tracks
from kling.demo.speech import Speech, frame_values, silence, synthesize_speech

DEFECTS = ("av_offset", "silent", "no_face", "blur", "scene_cut")


def clip_seed(recipe_seed: int, clip_id: str) -> int:
    """Per-clip seed from the recipe seed and the clip id: stable when clips are added or reordered."""
    return int(np.random.SeedSequence([int(recipe_seed), zlib.crc32(clip_id.encode())]).generate_state(1)[0])


@dataclass
class Shot:
    start: int  # first frame
    end: int  # one past the last frame
    identity: str | None
    background: np.ndarray = field(repr=False)


@dataclass
class ClipPlan:
    """Everything about a clip except its pixels."""

    id: str
    fps: float
    size: int  # frame width
    sample_rate: int
    n_frames: int
    seed: int
    motion: str
    identities: dict[str, Identity]
    shots: list[Shot]
    audio: np.ndarray  # as muxed (already shifted for av_offset)
    speech_segments: list[tuple[float, float]]  # on the muxed audio's timeline
    mouth: np.ndarray  # per frame 0..1, as rendered
    tracks: dict[str, np.ndarray]  # yaw, pitch, roll, scale, tx, ty, blink per frame
    blink_onsets: list[int]
    av_offset_frames: int = 0
    blur_sigma: float = 0.0
    defects: list[str] = field(default_factory=list)
    grain: np.ndarray | None = field(default=None, repr=False)  # sensor-noise fields, cycled per frame
    height: int | None = None  # frame height; None = size (square)
    head_scale: float | None = None  # frame px per face-template unit; None = height / 256 (close-up)
    head_y: float = 0.45  # head rest position, fraction of the frame height

    @property
    def frame_height(self) -> int:
        return self.height or self.size

    @property
    def framing(self) -> str:
        return "close_up" if self.head_scale is None else "half_body"

    @property
    def has_face(self) -> bool:
        return any(s.identity is not None for s in self.shots)


def _speech(voice: dict, seconds: float, seed: int, sample_rate: int, silent: bool) -> Speech:
    if silent:
        return silence(seconds, seed, sample_rate)
    return synthesize_speech(seconds, seed, f0=float(voice.get("f0", 140.0)), sample_rate=sample_rate)


def plan_clip(spec: dict[str, Any], recipe: dict[str, Any], recipe_seed: int) -> ClipPlan:
    """Turn one recipe clip entry into a ClipPlan (deterministic in recipe_seed and the clip id)."""
    cid = spec["id"]
    fps, size, sr = float(recipe["fps"]), int(recipe["size"]), int(recipe["sample_rate"])
    # half-body framing: a clip's own frame [width, height] and a head smaller than the close-up's
    height, head_scale, head_y = None, spec.get("head_scale"), float(spec.get("head_y", 0.45))
    if "frame" in spec:
        size, height = (int(v) for v in spec["frame"])
    if head_scale is not None:
        head_scale = float(head_scale)
    seed = clip_seed(recipe_seed, cid)
    rng = np.random.default_rng(seed)
    n = int(round(float(spec["duration_s"]) * fps))
    hop = sr / fps
    people = recipe["identities"]
    idents = {name: Identity(name=name, **{k: (tuple(v) if isinstance(v, list) else v)
                                           for k, v in p["face"].items()}) for name, p in people.items()}
    # shots: [{identity, frames}] for a scene cut, else one shot of the clip's identity (None: no face)
    shot_specs = spec.get("shots") or [{"identity": spec.get("identity"), "frames": n}]
    shots, start = [], 0
    audio_parts, envs, segments = [], [], []
    silent = bool(spec.get("silent", False))
    for k, ss in enumerate(shot_specs):
        name = ss.get("identity")
        if name is not None and name not in idents:
            raise ValueError(f"clip {cid}: unknown identity {name!r}")
        length = n - start if k == len(shot_specs) - 1 else int(ss["frames"])
        bg_cols = ss.get("background") or (people[name]["background"] if name else spec["background"])
        bg = render_background(size, tuple(bg_cols[0]), tuple(bg_cols[1]), seed + 7 * k, height=height)
        shots.append(Shot(start, start + length, name, bg))
        voice = people[name]["voice"] if name else spec.get("voice", {"f0": 150.0})
        samples = int(round((start + length) * hop)) - int(round(start * hop))
        sp = _speech(voice, samples / sr, seed + 1000 + k, sr, silent)
        audio_parts.append(sp.audio[:samples])
        envs.append(sp.envelope[:samples])
        t0 = start / fps
        segments += [(round(a + t0, 4), round(b + t0, 4)) for a, b in sp.segments]
        start += length
    audio = np.concatenate(audio_parts)
    envelope = np.concatenate(envs)

    # the mouth follows the loudness of the (un-shifted) speech over each frame's interval
    mouth = frame_values(envelope, fps, sr, n)
    mouth = np.clip(mouth / max(float(mouth.max()), 1e-9), 0, 1) ** 0.8 if mouth.max() > 0 else mouth

    offset = int(spec.get("av_offset_frames", 0))
    if offset:  # positive: audio lags video (audio delayed by `offset` frames)
        shift = int(round(offset * hop))
        pad = silence(abs(shift) / sr, seed + 2000, sr).audio
        audio = np.concatenate([pad, audio])[: audio.size] if shift > 0 else np.concatenate([audio[-shift:], pad])
        segments = [(round(max(0.0, a + offset / fps), 4), round(min(n / fps, b + offset / fps), 4))
                    for a, b in segments]

    tracks = pose_tracks(spec.get("motion", "sway"), n, fps, rng)
    blink, onsets = blink_track(n, fps, rng)
    tracks["blink"] = blink
    blur = float(spec.get("blur_sigma", 0.0))
    defects = []
    if offset:
        defects.append("av_offset")
    if silent:
        defects.append("silent")
    if all(s.identity is None for s in shots):
        defects.append("no_face")
    if blur > 0:
        defects.append("blur")
    if len(shots) > 1:
        defects.append("scene_cut")
    return ClipPlan(
        id=cid, fps=fps, size=size, sample_rate=sr, n_frames=n, seed=seed, motion=spec.get("motion", "sway"),
        identities=idents, shots=shots, audio=audio.astype(np.float32), speech_segments=segments,
        mouth=mouth.astype(np.float32), tracks=tracks, blink_onsets=onsets, av_offset_frames=offset,
        blur_sigma=blur, defects=defects, height=height, head_scale=head_scale, head_y=head_y,
    )


def _scene_only(bg: np.ndarray, i: int, fps: float, grain: np.ndarray) -> np.ndarray:
    """A face-free frame: the backdrop with a potted plant drifting across it (so it is not static)."""
    img = bg.copy()
    size = img.shape[1]
    x = size * (0.3 + 0.4 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.12 * i / fps)))
    y = img.shape[0] * 0.62
    leaves = np.zeros(img.shape[:2], np.float32)
    for k in range(7):
        a = -np.pi / 2 + (k - 3) * 0.35
        c = (int(x + 0.12 * size * np.cos(a)), int(y - 0.05 * size + 0.12 * size * np.sin(a)))
        cv2.ellipse(leaves, c, (size // 28, size // 11), np.degrees(a) + 90, 0, 360, 1.0, -1, cv2.LINE_AA)
    leaves = cv2.GaussianBlur(leaves, (0, 0), 1.0)
    img = img * (1 - leaves[..., None]) + leaves[..., None] * np.array([60, 120, 55], np.float32)
    pot = np.zeros(img.shape[:2], np.float32)
    cv2.rectangle(pot, (int(x - size * 0.06), int(y)), (int(x + size * 0.06), int(y + size * 0.12)), 1.0, -1)
    img = img * (1 - pot[..., None]) + pot[..., None] * np.array([150, 80, 50], np.float32)
    img += grain[..., None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render_clip_frame(plan: ClipPlan, i: int) -> np.ndarray:
    shot = next(s for s in plan.shots if s.start <= i < s.end)
    if plan.grain is None:
        plan.grain = grain_bank(plan.seed + 3000, plan.size, height=plan.height)
    grain = plan.grain[i % len(plan.grain)]
    if shot.identity is None:
        frame = _scene_only(shot.background, i, plan.fps, grain)
    else:
        tr = plan.tracks
        pose = Pose(yaw=float(tr["yaw"][i]), pitch=float(tr["pitch"][i]), roll=float(tr["roll"][i]),
                    scale=float(tr["scale"][i]), tx=float(tr["tx"][i]), ty=float(tr["ty"][i]),
                    mouth=float(plan.mouth[i]), blink=float(tr["blink"][i]))
        frame = render_frame(plan.identities[shot.identity], pose, shot.background, grain,
                             head_scale=plan.head_scale, head_y=plan.head_y)
    if plan.blur_sigma > 0:
        sigma = (plan.blur_sigma * plan.frame_height / 256.0 if plan.head_scale is None
                 else plan.blur_sigma * plan.head_scale)  # in face-template units, as the head is drawn
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    return frame


def iter_clip_frames(plan: ClipPlan, chunk: int = 25) -> Iterator[np.ndarray]:
    """Rendered frames in (k, H, W, 3) uint8 RGB chunks."""
    for s in range(0, plan.n_frames, chunk):
        yield np.stack([render_clip_frame(plan, i) for i in range(s, min(s + chunk, plan.n_frames))])


def render_clip(plan: ClipPlan) -> np.ndarray:
    """All frames at once (short clips, tests)."""
    return np.concatenate(list(iter_clip_frames(plan)))
