"""The spatio-temporal cascade (KlingAvatar 2.0, section 3): plan the whole duration first, then refine between
anchors in parallel, instead of generating chunk after chunk (which drifts at every join).

    1. storyline        the director's shots (optional): their boundaries become split points, their prompts
                        and negatives condition the sub-clips that fall in them
    2. blueprint        the whole duration at a low frame rate (one frame every `blueprint_stride` frames) and,
                        with `blueprint_side`, a lower resolution, window after window with the last frame as
                        context, audio tokens taken at the blueprint's frames
    3. keyframes        near each split point, the blueprint frame that best keeps identity, is sharp and
                        moves (kling.generate.keyframes); with `keyframe_refine`, each upscaled to the model's
                        side and re-rendered from the reference under its shot's prompt and audio, keeping its
                        pose (AvatarPipeline.refine)
    4. sub-clips        between consecutive keyframes, first-last-frame conditioned, audio-synced, at the full
                        frame rate; independent (own seed each), so serial and parallel runs agree bit for bit;
                        a sub-clip's windows joined at their shared frame, or (`stitch: latents`) in latent space
                        and decoded as one causal stream, which smooths the window joins only with a VAE that
                        decodes streams longer than a window (trained on such clips: kling.train.vae's
                        chained_windows; measured by benchmarks/vae_stream.py)
    5. colour match     each sub-clip's per-channel mean and spread matched to its keyframes'
    6. transitions      around each join, one window regenerated with `transition_context` frames of both
                        neighbours as context (mask context:K) and the join's audio
    7. super-resolution the stitched faces at `scale` x the model's side by a trained video network
                        (kling.models.super_resolution), in chunks: memory flat in the duration
    8. stitch           the faces pasted back into the reference image and streamed to the mp4 with the audio

Every stage's output is kept under `stage_dir`: blueprint.mp4, keyframes/key_*.png (and blueprint_*.png, the
blueprint's frames before re-rendering), subclips/*.mp4, faces.npy (the stitched faces, lossless), faces_sr.npy
(after super-resolution) and stages.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import multiprocessing

import cv2
import numpy as np
import torch

from kling.atomic import atomic_write_json
from kling.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from kling.generate.avatar_pipeline import STITCHES, AvatarPipeline, Conditions, GenerateConfig, load_checkpoint
from kling.generate.keyframes import KeyframeScorer, choose_keyframes
from kling.io.encode import VideoWriter, write_video
from kling.io.frame_file import FrameFile
from kling.models.conditioning import known_frames
from kling.models.framing import paste
from kling.models.super_resolution import SuperResolutionCheckpoint, upscale_frames


@dataclasses.dataclass(frozen=True)
class CascadeConfig:
    subclip_windows: int = 4  # model windows per sub-clip (tiny: 4 x 8 frames = 1.28 s between keyframes)
    blueprint_stride: int | None = None  # frames between blueprint frames; default the window hop, so that
    #                                      every split point (a multiple of the hop) has a blueprint frame
    blueprint_side: int | None = None  # the blueprint's frame side (None: the model's); lower needs a model trained
    #                                    at it (AvatarTrainConfig.sides) and keyframe_refine to upscale the keyframes
    keyframe_search: int = 1  # candidates: the split's blueprint frame and this many each side
    sharpness_weight: float = 0.05
    motion_weight: float = 0.05
    keyframe_refine: float = 0.0  # SDEdit strength re-rendering each keyframe under its shot (0: the blueprint's frame)
    stitch: str = "pixels"  # a sub-clip's windows joined as decoded "pixels" or in "latents" (one causal decode):
    #                         "latents" needs a VAE trained on streams (benchmarks/vae_stream.py says whether it can)
    colour_match: bool = True
    transitions: bool = True
    transition_context: int = 2  # known frames at each end of a transition window
    workers: int = 1  # sub-clips generated in parallel processes
    subclip_threads: int = 1  # torch threads per sub-clip, the same serial or parallel (bit-identical results)
    super_resolution: bool = False  # stage 7: needs a trained network (generate_cascade's `upscaler`)

    def __post_init__(self):
        if self.stitch not in STITCHES:  # said now, not after the blueprint
            raise ValueError(f"cascade stitch must be one of {STITCHES}, not {self.stitch!r}")
        if not 0.0 <= self.keyframe_refine <= 1.0:
            raise ValueError(f"cascade keyframe_refine is a strength in [0, 1], not {self.keyframe_refine}")
        if self.blueprint_side is not None and not self.keyframe_refine:
            raise ValueError("a cascade with blueprint_side has its keyframes upscaled by the model: set keyframe_refine "
                             "(the strength it redraws them at, e.g. 0.5)")


@dataclasses.dataclass
class Shot:
    start: int  # first frame
    prompt: str
    negative: str = ""


def shots_from_storyline(storyline, n_frames: int, prompt: str) -> list[Shot]:
    """The director's shots as frame spans (kling.director.schema.Storyline or its dict); none: one shot."""
    if storyline is None:
        return [Shot(0, prompt)]
    data = storyline if isinstance(storyline, dict) else storyline.model_dump()
    negatives = {n["shot"]: n["negatives"] for n in ((data.get("negatives") or {}).get("shots") or [])}
    glob = list((data.get("negatives") or {}).get("global_negatives") or [])
    shots = []
    for i, s in enumerate(data["shots"]):
        start = min(n_frames - 1, int(round(float(s["t_start"]) * FPS)))
        text = ", ".join(x for x in (data.get("global_prompt", ""), s.get("prompt", "")) if x) or prompt
        shots.append(Shot(start, text, ", ".join(glob + list(negatives.get(i, [])))))
    shots[0].start = 0
    return shots


def shot_at(shots: list[Shot], frame: int) -> Shot:
    return max((s for s in shots if s.start <= frame), key=lambda s: s.start)


def split_points(n_frames: int, hop: int, windows: int, shot_starts: list[int]) -> list[int]:
    """Frames where keyframes go: every `windows` x `hop` frames and at each shot start, all on multiples of
    the hop (so sub-clips are whole windows), at least one window apart, 0 first."""
    every = hop * windows
    points = set(range(0, n_frames - hop, every)) | {int(round(s / hop)) * hop for s in shot_starts}
    out = []
    for p in sorted(points):
        if p == 0 or (p - out[-1] >= hop and n_frames - 1 - p >= hop):
            out.append(p)
    return out


def colour_match(faces: np.ndarray, targets: list[np.ndarray]) -> np.ndarray:
    """Per-channel affine matching the clip's mean and spread to those of the target frames (its keyframes)."""
    src = faces.reshape(-1, 3).astype(np.float64)
    tgt = np.concatenate([t.reshape(-1, 3) for t in targets]).astype(np.float64)
    gain = (tgt.std(0) + 1e-6) / (src.std(0) + 1e-6)
    out = (faces.astype(np.float64) - src.mean(0)) * np.clip(gain, 0.5, 2.0) + tgt.mean(0)
    return out.round().clip(0, 255).astype(np.uint8)


def subclip_seed(seed: int, index: int) -> int:
    return (int(seed) * 1_000_003 + 7919 * (index + 1)) % (2**63)


def refine_keyframe(pipe: AvatarPipeline, cond: Conditions, face: np.ndarray, frame: int, index: int, strength: float,
                    config: GenerateConfig) -> np.ndarray:
    """Keyframe number `index` (at video frame `frame`) re-rendered under `cond`, its shot's conditions, by the
    window of the model's length that ends on it; seeded per keyframe, apart from the sub-clips' seeds. A face
    from a lower-resolution blueprint is enlarged (bicubic) to the reference's side first: the model upscales it."""
    side = cond.reference.shape[0]
    if face.shape[0] != side:
        face = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    hop = pipe.window_length(config) - 1
    gen = torch.Generator().manual_seed(subclip_seed(config.seed, 200_000 + index))
    return pipe.refine(cond, face, np.arange(frame - hop, frame + 1), strength, gen, config)


# -- sub-clips, serial or in worker processes ----------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(checkpoint_folder: str, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["pipe"] = AvatarPipeline(load_checkpoint(checkpoint_folder))


def _subclip(pipe: AvatarPipeline, job: dict) -> np.ndarray:
    cond: Conditions = job["cond"]
    gen = torch.Generator().manual_seed(job["seed"])
    faces = pipe.windows(cond, np.arange(job["start"], job["end"] + 1), job["first"], job["last"], gen, job["config"],
                         stitch=job["stitch"])
    np.save(job["path"], faces)
    return job["path"]


def _subclip_in_worker(job: dict) -> str:
    with torch.no_grad():
        return _subclip(_WORKER["pipe"], job)


def subclip_pool(checkpoint_folder: str | Path, cascade: CascadeConfig) -> ProcessPoolExecutor | None:
    """Worker processes with the checkpoint loaded, for the sub-clips of one or many videos (None: serial)."""
    if cascade.workers <= 1:
        return None
    return ProcessPoolExecutor(cascade.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(str(checkpoint_folder), cascade.subclip_threads))


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's thread count set to `n` inside the block (None: left as it is), restored after it."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generate_cascade(pipe: AvatarPipeline, image: np.ndarray, audio: np.ndarray, out: str | Path, stage_dir: str | Path,
                     prompt: str = "", storyline=None, config: GenerateConfig = GenerateConfig(),
                     cascade: CascadeConfig = CascadeConfig(),
                     progress: Callable[[str, str], None] | None = None, pool: ProcessPoolExecutor | None = None,
                     upscaler: SuperResolutionCheckpoint | None = None) -> dict:
    """Write `out` (mp4 with the audio) for a reference image and 16 kHz mono audio; returns the stages' record
    (also written to stage_dir/stages.json). `pool`: workers from `subclip_pool` kept across videos (else
    this call starts its own when cascade.workers > 1); `upscaler`: the network of stage 7, when
    cascade.super_resolution."""
    pipe.check(config)
    if cascade.super_resolution and upscaler is None:
        raise ValueError("the cascade's super-resolution stage needs a trained network (the training/super_resolution "
                         "asset; kling generate --super-resolution DIR)")
    say = progress or (lambda stage, msg: None)
    stage_dir = Path(stage_dir)
    for sub in ("keyframes", "subclips"):
        (stage_dir / sub).mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    length = pipe.window_length(config)
    hop = length - 1
    stride = cascade.blueprint_stride or hop

    # 1. storyline: shots as frame spans
    t = time.perf_counter()
    n_frames = max(1, int(round(len(audio) / SAMPLES_PER_FRAME)))  # as AvatarPipeline.prepare counts them
    shots = shots_from_storyline(storyline, n_frames, prompt)
    blue_pos = np.arange(0, n_frames, stride)
    cond = pipe.prepare(image, audio, prompt, config,
                        token_frames=int(blue_pos[-1]) + (length + 1) * stride + 1)
    times["storyline_and_conditions"] = time.perf_counter() - t
    say("storyline", f"{len(shots)} shot(s), {n_frames} frames")

    # 2. blueprint at 1/stride the frame rate (and at blueprint_side)
    t = time.perf_counter()
    side = pipe.size.size
    low = cond if cascade.blueprint_side in (None, side) else pipe.at_side(cond, image, cascade.blueprint_side, config)
    blueprint = pipe.windows(low, blue_pos, low.reference, None, torch.Generator().manual_seed(config.seed), config)
    write_video(stage_dir / "blueprint.mp4", blueprint, fps=FPS / stride, sample_rate=None)
    times["blueprint"] = time.perf_counter() - t
    say("blueprint", f"{len(blueprint)} frames at {FPS / stride:g} fps, {blueprint.shape[1]} px")

    # 3. keyframes at the split points (upscaled to the model's side from a lower blueprint's, then redrawn)
    t = time.perf_counter()
    points = split_points(n_frames, hop, cascade.subclip_windows, [s.start for s in shots])
    scorer = KeyframeScorer(image, cond.window, pipe.detector)
    keys = choose_keyframes(blueprint, stride, points, scorer, low.reference, cascade, hop, n_frames)
    keys[0]["face"] = cond.reference
    bounds = [k["frame"] for k in keys] + [n_frames - 1]
    subclip_shots = [shot_at(shots, (a + b) // 2) for a, b in zip(bounds[:-1], bounds[1:])]
    conds: dict[tuple[str, str], Conditions] = {}

    def shot_conditions(shot: Shot) -> Conditions:
        if (shot.prompt, shot.negative) not in conds:
            conds[shot.prompt, shot.negative] = pipe.with_prompt(cond, shot.prompt, shot.negative)
        return conds[shot.prompt, shot.negative]

    for k, key in enumerate(keys[1:] if cascade.keyframe_refine else [], start=1):  # frame 0 is given
        p, shot = key["frame"], subclip_shots[k]  # under the shot of the sub-clip it starts
        cv2.imwrite(str(stage_dir / "keyframes" / f"blueprint_{p:06d}.png"), cv2.cvtColor(key["face"], cv2.COLOR_RGB2BGR))
        key["face"] = refine_keyframe(pipe, shot_conditions(shot), key["face"], p, k, cascade.keyframe_refine, config)
        key["refined"] = {"strength": cascade.keyframe_refine, "prompt": shot.prompt,
                          "identity": scorer.identity(key["face"]), "sharpness": scorer.sharpness(key["face"])}
    for k in keys:
        cv2.imwrite(str(stage_dir / "keyframes" / f"key_{k['frame']:06d}.png"), cv2.cvtColor(k["face"], cv2.COLOR_RGB2BGR))
    times["keyframes"] = time.perf_counter() - t
    say("keyframes", f"{len(keys)} keyframes at frames {[k['frame'] for k in keys]}"
        + (f", re-rendered at strength {cascade.keyframe_refine}" if cascade.keyframe_refine else ""))

    # 4. sub-clips between keyframes, each under its shot's prompt
    t = time.perf_counter()
    jobs = []
    for i, (a, b, shot) in enumerate(zip(bounds[:-1], bounds[1:], subclip_shots)):
        last = keys[i + 1]["face"] if i + 1 < len(keys) else None
        jobs.append({"cond": shot_conditions(shot), "start": a, "end": b, "first": keys[i]["face"],
                     "last": last, "seed": subclip_seed(config.seed, i), "config": config, "prompt": shot.prompt,
                     "negative": shot.negative,
                     "stitch": cascade.stitch,
                     "path": str(stage_dir / "subclips" / f"sub_{i:04d}.npy")})
    own = pool is None and cascade.workers > 1
    pool = subclip_pool(pipe.ckpt.folder, cascade) if own else pool
    if pool is not None:
        try:
            list(pool.map(_subclip_in_worker, jobs))
        finally:
            if own:
                pool.shutdown()
    else:
        with torch_threads(cascade.subclip_threads), torch.no_grad():
            for job in jobs:
                _subclip(pipe, job)
    times["subclips"] = time.perf_counter() - t
    say("subclips", f"{len(jobs)} sub-clips ({cascade.workers} worker(s))")

    # 5. colour match, assembled into one file of faces on disk (memory stays flat with duration)
    t = time.perf_counter()
    faces = FrameFile(stage_dir / "faces.npy", (n_frames, side, side, 3))
    for i, job in enumerate(jobs):
        clip = np.load(job["path"])[: job["end"] - job["start"] + 1]
        if cascade.colour_match:
            targets = [keys[i]["face"]] + ([keys[i + 1]["face"]] if i + 1 < len(keys) else [])
            clip = np.concatenate([clip[:1], colour_match(clip[1:], targets)])
        stop = min(n_frames, job["start"] + len(clip))
        faces[job["start"]: stop] = clip[: stop - job["start"]]
        write_video(stage_dir / "subclips" / f"sub_{i:04d}.mp4", clip, fps=FPS, sample_rate=None)
        Path(job["path"]).unlink()  # faces.npy holds it losslessly now
    times["colour_match"] = time.perf_counter() - t

    # 6. transitions: one window around each join, both neighbours as context
    t = time.perf_counter()
    joins = bounds[1:-1] if cascade.transitions else []
    ctx_k = cascade.transition_context
    for j, p in enumerate(joins):
        s = min(max(0, p - length // 2), n_frames - length)
        if s < 0:
            continue
        known = known_frames(f"context:{ctx_k}", length)
        video = faces[s: s + length]
        gen = torch.Generator().manual_seed(subclip_seed(config.seed, 100_000 + j))
        with torch.no_grad():
            new = pipe.window(cond, np.where(known.numpy()[:, None, None, None], video, 0).astype(np.uint8), known,
                              np.arange(s, s + length), gen, config)
        faces[s + ctx_k: s + length - ctx_k] = new[ctx_k: length - ctx_k]
    times["transitions"] = time.perf_counter() - t
    say("transitions", f"{len(joins)} join(s) regenerated")

    # 7. super-resolution, chunk by chunk from one file of faces to another
    t = time.perf_counter()
    if cascade.super_resolution:
        hi = side * upscaler.model.size.scale
        faces = upscale_frames(upscaler.model, faces, FrameFile(stage_dir / "faces_sr.npy", (n_frames, hi, hi, 3)))
        say("super-resolution", f"{side} -> {hi} px")
    times["super_resolution"] = time.perf_counter() - t

    # 8. stitch: paste into the reference image, streamed to the mp4 with the audio
    t = time.perf_counter()
    with VideoWriter(out, fps=FPS, sample_rate=SAMPLE_RATE) as writer:
        for f in faces.chunks():
            writer.write(paste(image, f, cond.window))
        writer.write_audio(audio[: n_frames * SAMPLES_PER_FRAME])
    times["stitch"] = time.perf_counter() - t
    say("stitch", f"{out}")

    record = {
        "frames": n_frames, "window": [float(x) for x in cond.window], "blueprint_stride": stride,
        "blueprint_side": int(blueprint.shape[1]),
        "shots": [dataclasses.asdict(s) for s in shots],
        "keyframes": [{k: v for k, v in key.items() if k != "face"} for key in keys],
        "subclips": [{"start": j["start"], "end": j["end"], "seed": j["seed"], "last_known": j["last"] is not None,
                      "prompt": j["prompt"], "negative": j["negative"]}
                     for j in jobs],
        "joins": [int(p) for p in bounds[1:-1]],  # where sub-clips meet (evaluation scores its transitions there)
        "transitions": [int(p) for p in joins], "cascade_config": dataclasses.asdict(cascade),
        "super_resolution": {"checkpoint": str(upscaler.folder), "sha256": upscaler.sha256, "side": int(faces.shape[1])}
        if cascade.super_resolution else None,
        "stage_seconds": {k: round(v, 3) for k, v in times.items()}, "stage_dir": str(stage_dir),
    }
    atomic_write_json(stage_dir / "stages.json", record)
    return record
