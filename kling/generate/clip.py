"""One generated clip on disk: the mp4 with its audio muxed, and beside it OUT.json with the checkpoint's
hash, the seed, the configuration and the hashes of the inputs."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from kling.atomic import atomic_write_json
from kling.clock import FPS, SAMPLE_RATE
from kling.hashing import file_sha256
from kling.io.audio import read_audio
from kling.io.encode import write_video
from kling.paths import sidecar
from kling.generate.avatar_pipeline import AvatarPipeline, GenerateConfig, load_checkpoint
from kling.generate.cascade import CascadeConfig, generate_cascade


def read_image(path: str | Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"unreadable image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def generate_clip(checkpoint: str | Path | AvatarPipeline, image: str | Path, audio: str | Path, out: str | Path,
                  prompt: str = "", first: str | Path | None = None, last: str | Path | None = None,
                  config: GenerateConfig = GenerateConfig(), threads: int | None = None, extra: dict | None = None,
                  cascade: CascadeConfig | None = None, storyline=None, progress=None, pool=None, upscaler=None) -> dict:
    """Generate `out` (mp4, 25 fps, 16 kHz audio) for a reference image and any audio file PyAV reads (any
    rate and channel count: resampled to 16 kHz mono); `extra` joins the metadata. With `cascade`, through the
    spatio-temporal cascade (its stages kept in OUT.stages/; `storyline` optional; `pool` its sub-clip workers,
    kling.generate.cascade.subclip_pool; `upscaler` its super-resolution network,
    kling.models.super_resolution.load_super_resolution), else window after window.
    Returns the metadata also written to OUT.json; its `joins` are the frames where independently generated
    pieces meet (windows, or the cascade's sub-clips): evaluation scores the video's transitions there."""
    if threads:
        torch.set_num_threads(threads)
    pipe = checkpoint if isinstance(checkpoint, AvatarPipeline) else AvatarPipeline(load_checkpoint(checkpoint))
    samples = read_audio(audio, SAMPLE_RATE)
    if samples is None or samples.size == 0:
        raise ValueError(f"{audio}: no audio stream")
    t0 = time.perf_counter()
    if cascade is not None:
        if first or last:
            raise ValueError("--first / --last apply to a single clip, not to the cascade")
        record = generate_cascade(pipe, read_image(image), samples, out, Path(out).with_suffix(".stages"), prompt=prompt,
                                  storyline=storyline, config=config, cascade=cascade, progress=progress, pool=pool,
                                  upscaler=upscaler)
        path, n = Path(out), record["frames"]
        info = {"checkpoint": str(pipe.ckpt.folder), "checkpoint_sha256": pipe.ckpt.sha256, "size": pipe.size.name,
                "frames": n, "joins": record["joins"], "prompt": prompt, "config": dataclasses.asdict(config),
                "cascade": record}
    else:
        frames, info = pipe(read_image(image), samples, prompt=prompt,
                            first=read_image(first) if first else None, last=read_image(last) if last else None,
                            config=config)
        path, n = write_video(out, frames, fps=FPS, audio=samples[: int(round(len(frames) * SAMPLE_RATE / FPS))],
                              sample_rate=SAMPLE_RATE), len(frames)
    seconds = time.perf_counter() - t0
    meta = info | {
        "output": str(path), "seed": config.seed, "generate_config": dataclasses.asdict(config),
        "inputs": {"image": str(image), "image_sha256": file_sha256(image), "audio": str(audio),
                   "audio_sha256": file_sha256(audio), "first": str(first) if first else None,
                   "last": str(last) if last else None},
        "model_config": pipe.ckpt.meta.get("config"), "seconds": round(seconds, 3),
        "frames_per_second": round(n / seconds, 3) if seconds else None,
        "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
    } | (extra or {})
    atomic_write_json(sidecar(path), meta)
    return meta
