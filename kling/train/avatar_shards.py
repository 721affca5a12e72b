"""Training shards of the avatar model, written once from the kept curated clips.

Format: WebDataset-style tar files (plain `tarfile`, no extra dependency). Each sample is one fixed-length
window, already framed and resized as the model sees it: `<key>.frames.npy` (T, S, S, 3) uint8,
`<key>.audio.npy` (T * 640,) float32 at 16 kHz aligned to the frames, `<key>.boxes.npy` (T, 4) face box and
`<key>.mouth.npy` (T, 20, 2) dlib mouth landmarks 48-67 in window pixels, `<key>.json` (clip, video,
first frame, caption, window). Why tar rather than Parquet beside mp4: a sample is self-contained and
read sequentially, so training never decodes video, re-detects faces or seeks; shards stream from any
store and split across workers by file, which is what large video training needs; Parquet beside mp4
would re-decode every clip on every epoch.

The split is recorded in `split.json`: every video a benchmark case draws on (its ground truth, reference
and audio source) is held out, and the writer refuses a sample from a held-out video.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import yaml

from kling.atomic import atomic_path, atomic_write_json
from kling.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from kling.hashing import config_hash, file_sha256
from kling.io.audio import fit_length, read_audio
from kling.io.decode import iter_frames
from kling.models.framing import crop, face_window, to_window
from kling.paths import repo_root

log = logging.getLogger(__name__)

SHARD_VERSION = "avatar_shards/1"
SPLIT = "split.json"
MOUTH = slice(48, 68)


class NoTrainingSamples(ValueError):
    """The shards hold no window to train on (every kept clip held out, or none kept): nothing is trained."""


def require_samples(shard_dir: str | Path) -> None:
    """Raise NoTrainingSamples, naming the split's skip reasons, unless the shards hold a window."""
    split = json.loads((Path(shard_dir) / SPLIT).read_text()) if (Path(shard_dir) / SPLIT).is_file() else {}
    if not split.get("samples"):
        reasons = sorted({s["reason"] for s in split.get("skipped", [])}) or ["no shards written"]
        raise NoTrainingSamples(f"{shard_dir}: no training windows ({'; '.join(reasons)})")


class HeldOutLeak(ValueError):
    """A sample from a video a benchmark case uses was about to enter the training shards."""


def demo_held_out(recipe_path: str | Path | None = None) -> set[str]:
    """Corpus clips the demo benchmark's cases use (datasets/benchmarks/demo.yaml): short cases' clips and
    every clip a long case chains."""
    recipe = yaml.safe_load(Path(recipe_path or repo_root() / "datasets" / "benchmarks" / "demo.yaml").read_text())
    held = {item["clip"] for item in recipe.get("short", [])}
    for item in recipe.get("long", []):
        held.update(item["clips"])
    return held


def curated_clips(curation_dir: str | Path) -> Iterator[tuple[str, str, Path, pd.DataFrame]]:
    """(clip_id, video_id, normalised video, the clip's face-track rows) of every clip the curated manifest
    keeps (quality, lip sync and every other filter passed)."""
    from kling.curate.runner import Workspace
    from kling.curate.steps import MANIFEST_NAME

    ws = Workspace(curation_dir)
    manifest = pd.read_parquet(ws.root / MANIFEST_NAME)
    for row in manifest[manifest["kept"]].sort_values("clip_id").itertuples(index=False):
        tracks = pd.read_parquet(ws.output("face_tracks", row.video_id, ".parquet"))
        sel = (tracks["track_id"] == row.track_id) & (tracks["frame"] >= row.start_frame) & (tracks["frame"] < row.end_frame)
        yield row.clip_id, row.video_id, ws.output("normalise", row.video_id, ".mp4"), tracks[sel]


def clip_text(clip_id: str, video_id: str, captions: dict[str, str] | None = None) -> str:
    """The text of a clip: its caption (kling.curate.captions.read_captions of the curation workspace) when
    there is one, else a neutral prompt (a clip the captions step has not reached)."""
    if captions:
        for key in (clip_id, video_id):
            if key in captions:
                return captions[key]
    return "A person talks to the camera."


@dataclass(frozen=True)
class ShardConfig:
    frames: int = 9  # window length (4k + 1): the model size's `frames`
    stride: int = 2  # frames between window starts (overlapping windows: every audio phase against the latent grid)
    side: int = 64  # model input side
    samples_per_shard: int = 64


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # byte-stable shards for the same input
    tar.addfile(info, io.BytesIO(data))


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def clip_windows(clip_id: str, video_id: str, video: Path, tracks: pd.DataFrame, cfg: ShardConfig,
                 text: str) -> Iterator[dict]:
    """Windows of one kept clip (its face-track rows give the frames, box and landmarks)."""
    tracks = tracks.sort_values("frame")
    frames_idx = tracks["frame"].to_numpy()
    if len(frames_idx) < cfg.frames:
        return
    first, last = int(frames_idx[0]), int(frames_idx[-1])
    audio = read_audio(video, SAMPLE_RATE)
    if audio is None:
        return
    audio = fit_length(audio, (last + 1) * SAMPLES_PER_FRAME)
    boxes = tracks[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
    lm68 = np.stack(tracks["lm68"].to_numpy()).reshape(-1, 68, 2)
    by_frame = {int(f): i for i, f in enumerate(frames_idx)}
    frames: dict[int, np.ndarray] = {}
    for chunk in iter_frames(video, fps=FPS, chunk_size=32):
        for j, rgb in enumerate(chunk.frames):
            if first <= chunk.start + j <= last:
                frames[chunk.start + j] = rgb
        if chunk.start + len(chunk) > last:
            break
    for start in range(first, last - cfg.frames + 2, cfg.stride):
        span = range(start, start + cfg.frames)
        if not all(f in by_frame and f in frames for f in span):
            continue
        rows = [by_frame[f] for f in span]
        window = face_window(boxes[rows].mean(0))  # one window per sample: the camera does not jitter
        crops = np.stack([crop(frames[f], window, cfg.side) for f in span])
        box = to_window(boxes[rows].reshape(-1, 2, 2), window, cfg.side).reshape(-1, 4)
        mouth = to_window(lm68[rows][:, MOUTH], window, cfg.side)
        yield {
            "key": f"{clip_id}_{start:06d}",  # WebDataset keys carry no dots,
            "frames": crops.astype(np.uint8),
            "audio": audio[start * SAMPLES_PER_FRAME: (start + cfg.frames) * SAMPLES_PER_FRAME].astype(np.float32),
            "boxes": box.astype(np.float32),
            "mouth": mouth.astype(np.float32),
            "meta": {"clip_id": clip_id, "video_id": video_id, "start_frame": start, "frames": cfg.frames,
                     "text": text, "window": window.tolist(), "side": cfg.side},
        }


def write_shards(clips: Iterable[tuple[str, str, Path, pd.DataFrame]], out_dir: str | Path, held_out: set[str],
                 cfg: ShardConfig = ShardConfig(), captions: dict[str, str] | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Write `out_dir/shard-00000.tar`, ... and `split.json` from (clip_id, video_id, video, track rows)
    (kling.train.sync_expert.kept_clips yields these); clips of `held_out` videos are skipped and recorded."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SPLIT).unlink(missing_ok=True)  # split.json vouches for the shards: gone until they are all rewritten
    for old in out_dir.glob("shard-*.tar"):
        old.unlink()
    train, skipped, shards = [], [], []
    n, tar, ctx = 0, None, None

    def close():
        nonlocal tar, ctx
        if tar is not None:
            tar.close()
            ctx.__exit__(None, None, None)
            tar = ctx = None

    for clip_id, video_id, video, tracks in clips:
        if video_id in held_out or clip_id in held_out:
            skipped.append({"clip_id": clip_id, "video_id": video_id, "reason": "benchmark case (held out)"})
            continue
        used = 0
        for sample in clip_windows(clip_id, video_id, Path(video), tracks, cfg, clip_text(clip_id, video_id, captions)):
            if sample["meta"]["video_id"] in held_out:
                raise HeldOutLeak(f"{sample['key']}: video {video_id} is held out for the benchmark")
            if tar is None or n % cfg.samples_per_shard == 0:
                close()
                path = out_dir / f"shard-{len(shards):05d}.tar"
                ctx = atomic_path(path)
                tar = tarfile.open(ctx.__enter__(), "w")
                shards.append(path.name)
            k = sample["key"]
            for field in ("frames", "audio", "boxes", "mouth"):
                _add(tar, f"{k}.{field}.npy", _npy(sample[field]))
            _add(tar, f"{k}.json", json.dumps(sample["meta"], sort_keys=True).encode())
            n += 1
            used += 1
        if used:
            train.append({"clip_id": clip_id, "video_id": video_id, "windows": used})
        else:
            skipped.append({"clip_id": clip_id, "video_id": video_id, "reason": f"shorter than {cfg.frames} tracked frames"})
        if progress:
            progress(clip_id)
    close()
    split = {"version": SHARD_VERSION, "config": cfg.__dict__, "held_out": sorted(held_out), "train": train,
             "skipped": skipped, "shards": shards, "samples": n}
    split["hash"] = config_hash(split)
    atomic_write_json(out_dir / SPLIT, split)
    log.info("avatar shards: %d samples from %d clips in %d shards (%d clips skipped)", n, len(train), len(shards), len(skipped))
    return split


def shard_curated(curation_dir: str | Path, out_dir: str | Path, held_out: set[str], cfg: ShardConfig = ShardConfig(),
                  progress: Callable[[str], None] | None = None) -> dict:
    """The shards of a curation workspace's kept clips, each window's text its clip's caption. Idempotent:
    when the manifest, the captions, the held-out set and the config are those of the shards already in
    `out_dir`, nothing is written and their split is returned (with "reused": True)."""
    from kling.curate.captions import read_captions
    from kling.curate.runner import Workspace
    from kling.curate.steps import MANIFEST_NAME

    ws, out_dir = Workspace(curation_dir), Path(out_dir)
    captions = read_captions(ws)
    source = config_hash({"manifest": file_sha256(ws.root / MANIFEST_NAME), "captions": captions,
                          "held_out": sorted(held_out), "config": cfg.__dict__, "version": SHARD_VERSION})
    if (out_dir / SPLIT).is_file():
        old = json.loads((out_dir / SPLIT).read_text())
        if old.get("source") == source and all((out_dir / name).is_file() for name in old["shards"]):
            return old | {"reused": True}
    split = write_shards(curated_clips(ws.root), out_dir, held_out, cfg, captions, progress)
    # `source` names this machine's inputs (for reuse); `hash`, the recipe's identity, stays free of it
    split["source"] = source
    atomic_write_json(out_dir / SPLIT, split)
    return split


def held_out_windows(curation_dir: str | Path, held_out: set[str], cfg: ShardConfig, per_clip: int = 4) -> list[dict]:
    """Windows of the kept clips the shards hold out (the benchmark cases'), `per_clip` evenly spaced per clip, for
    measuring a trained model on what it never saw; never written to a shard."""
    out = []
    for clip_id, video_id, video, tracks in curated_clips(curation_dir):
        if video_id in held_out or clip_id in held_out:
            windows = list(clip_windows(clip_id, video_id, Path(video), tracks, cfg, clip_text(clip_id, video_id)))
            out += [windows[int(i)] for i in np.unique(np.linspace(0, len(windows) - 1, per_clip).round())] if windows else []
    return out


def split_hash(out_dir: str | Path) -> str:
    """The identity of the shards in `out_dir` (their clips, windows, held-out set and config)."""
    return json.loads((Path(out_dir) / SPLIT).read_text())["hash"]


def read_shards(out_dir: str | Path) -> list[dict]:
    """Every sample of the shards in `out_dir` (tiny data: all in memory), in shard order."""
    out_dir = Path(out_dir)
    split = json.loads((out_dir / SPLIT).read_text())
    samples: dict[str, dict] = {}
    for name in split["shards"]:
        with tarfile.open(out_dir / name) as tar:
            for m in tar.getmembers():
                data = tar.extractfile(m).read()
                if m.name.endswith(".json"):
                    k = m.name[: -len(".json")]
                    samples.setdefault(k, {})["meta"] = json.loads(data)
                else:
                    k, field = m.name[: -len(".npy")].rsplit(".", 1)
                    samples.setdefault(k, {})[field] = np.load(io.BytesIO(data), allow_pickle=False)
    held = set(split["held_out"])
    for k, s in samples.items():
        if s["meta"]["video_id"] in held or s["meta"]["clip_id"] in held:
            raise HeldOutLeak(f"shard sample {k} comes from held-out video {s['meta']['video_id']}")
    return [samples[k] | {"key": k} for k in sorted(samples)]
