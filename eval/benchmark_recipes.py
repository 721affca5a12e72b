"""Builders of benchmark specs: the offline demo benchmark (from the demo corpus), and HDTF-style and
long-video benchmarks from a user's folder of real clips (reference = a frame of the clip, audio = its
audio, ground truth = the clip).

Every builder writes reference images (PNG) and driving audio (16 kHz wav) under `out_dir`, then the spec
`out_dir/benchmark.yaml`; ground truth stays where it is unless it has to be cut (streamed re-encode).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
import yaml

from eval.benchmarks import DURATION_CLASSES, VIDEO_EXTS, Benchmark, Case, duration_class_for
from kling.atomic import atomic_write_bytes
from kling.clock import FPS, SAMPLE_RATE
from kling.io.audio import fit_length, read_audio, samples_for_frames
from kling.io.decode import iter_frames
from kling.io.encode import VideoWriter, write_wav
from kling.io.errors import MediaError
from kling.paths import repo_root

log = logging.getLogger(__name__)

DEMO_RECIPE = repo_root() / "datasets" / "benchmarks" / "demo.yaml"
DEFAULT_INSTRUCTION = "A person talks to the camera."


@dataclass
class RecipeResult:
    benchmark: Benchmark
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of clips not used


def save_reference_frame(video: str | Path, out_path: str | Path, frame_index: int = 0, fps: float = FPS) -> Path:
    """Save frame `frame_index` (on the constant-rate timeline) of `video` as a PNG, streaming to it."""
    for chunk in iter_frames(video, fps=fps, chunk_size=32):
        if chunk.start <= frame_index < chunk.start + len(chunk):
            return write_image(out_path, chunk.frames[frame_index - chunk.start])
    raise ValueError(f"{video}: has no frame {frame_index}")


def write_image(path: str | Path, rgb: np.ndarray) -> Path:
    ok, buf = cv2.imencode(Path(path).suffix or ".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode image {path}")
    return atomic_write_bytes(path, buf.tobytes())


def _wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(path, samples, sample_rate)


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 image; raises ValueError when unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"unreadable image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def chain_audio(parts: Iterable[np.ndarray], n_samples: int) -> np.ndarray:
    """Concatenate `parts` cyclically until exactly `n_samples` samples."""
    parts = [p for p in parts if p is not None and p.size]
    if not parts:
        raise ValueError("nothing to chain: every audio part is empty")
    out, n, i = [], 0, 0
    while n < n_samples:
        p = parts[i % len(parts)][: n_samples - n]
        out.append(p)
        n += p.size
        i += 1
    return np.concatenate(out).astype(np.float32)


# -- demo ----------------------------------------------------------------------------------------------
def build_demo_benchmark(manifest, out_dir: str | Path, recipe_path: str | Path | None = None,
                         long_classes: Iterable[str] | None = None, short: bool = True,
                         name: str | None = None) -> Benchmark:
    """The demo benchmark from a demo corpus manifest (kling.demo.CorpusManifest).

    `long_classes` picks which long cases to build ("1min", "5min"); default: the recipe's
    `default_long_classes`. `short=False` leaves the short cases out and `name` renames the benchmark: the
    long cases as a benchmark of their own, whose aggregates are then means over the long cases only.
    """
    recipe = yaml.safe_load(Path(recipe_path or DEMO_RECIPE).read_text())
    out_dir = Path(out_dir)
    frame = int(recipe.get("reference_frame", 0))
    wanted = set(recipe.get("default_long_classes", []) if long_classes is None else long_classes)
    unknown = wanted - set(DURATION_CLASSES)
    if unknown:
        raise ValueError(f"unknown duration classes {sorted(unknown)}; expected {list(DURATION_CLASSES)}")
    lang = recipe.get("language", "en")
    cases, ref_of, audio_of = [], {}, {}

    def clip_inputs(clip_id: str) -> tuple[Path, np.ndarray]:
        if clip_id not in ref_of:
            src = manifest.path(clip_id)
            ref_of[clip_id] = save_reference_frame(src, out_dir / "reference" / f"{clip_id}.png", frame)
            audio_of[clip_id] = read_audio(src, SAMPLE_RATE)
        return ref_of[clip_id], audio_of[clip_id]

    for item in recipe["short"] if short else []:
        rec = manifest.clip(item["clip"])
        ref, audio = clip_inputs(rec.id)
        wav = _wav(out_dir / "audio" / f"{rec.id}.wav", audio, SAMPLE_RATE)
        cases.append(Case(id=rec.id, reference=(ref,), audio=wav, instruction=item["instruction"],
                          duration_class=duration_class_for(audio.size / SAMPLE_RATE), language=lang,
                          ground_truth=manifest.path(rec.id), identity=rec.identity,
                          duration_s=round(audio.size / SAMPLE_RATE, 4), source={"corpus_clip": rec.id}))
    for item in recipe.get("long", []):
        if item["duration_class"] not in wanted:
            continue
        idents = {manifest.clip(c).identity for c in item["clips"]}
        if len(idents) != 1 or None in idents:
            raise ValueError(f"long case {item['id']!r}: chained clips must share one identity, got {idents}")
        ref = clip_inputs(item["clips"][0])[0]
        audio = chain_audio([clip_inputs(c)[1] for c in item["clips"]], int(item["duration_s"] * SAMPLE_RATE))
        wav = _wav(out_dir / "audio" / f"{item['id']}.wav", audio, SAMPLE_RATE)
        cases.append(Case(id=item["id"], reference=(ref,), audio=wav, instruction=item["instruction"],
                          duration_class=item["duration_class"], language=lang, identity=idents.pop(),
                          duration_s=float(item["duration_s"]), source={"chained_clips": list(item["clips"])}))
    bench = Benchmark(name=name or recipe["name"], version=str(recipe.get("version", "1")), cases=cases, root=out_dir,
                      description="Offline demo benchmark from the synthetic demo corpus.", language=lang,
                      recipe={"builder": "demo", "corpus_recipe_hash": getattr(manifest, "recipe_hash", None),
                              "long_classes": sorted(wanted), "short": short})
    bench.save(out_dir / "benchmark.yaml")
    return bench


# -- user clips ----------------------------------------------------------------------------------------
def identity_from_name(stem: str) -> str:
    """HDTF-style names carry the person then a clip number (WDA_BarackObama_000): drop the number."""
    return re.sub(r"[_-]\d+$", "", stem) or stem


def safe_id(stem: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-") or "clip"
    return s[:128]


def _clips(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder of clips: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith("."))


def cut_clip(src: str | Path, dst: str | Path, n_frames: int, audio: np.ndarray, fps: float = FPS) -> Path:
    """Re-encode the first `n_frames` frames of `src` with `audio` (streamed, chunk by chunk)."""
    with VideoWriter(dst, fps=fps, sample_rate=SAMPLE_RATE) as w:
        w.write_audio(fit_length(audio, samples_for_frames(n_frames, fps, SAMPLE_RATE)))
        left = n_frames
        for chunk in iter_frames(src, fps=fps):
            w.write(chunk.frames[:left])
            left -= min(left, len(chunk))
            if left == 0:
                break
    return Path(dst)


def _clip_case(src: Path, out_dir: Path, cid: str, language: str, instruction: str, frame: int,
               max_s: float | None, bench_name: str) -> Case:
    audio = read_audio(src, SAMPLE_RATE)
    if audio is None or audio.size == 0:
        raise MediaError("clip has no audio stream", src)
    length = audio.size / SAMPLE_RATE
    gt = src
    if max_s is not None and length > max_s + 1.0 / FPS:
        n = int(round(max_s * FPS))
        audio = audio[: samples_for_frames(n, FPS, SAMPLE_RATE)]
        gt = cut_clip(src, out_dir / "ground_truth" / f"{cid}.mp4", n, audio)
        length = audio.size / SAMPLE_RATE
    sidecar = src.with_suffix(".txt")
    text = sidecar.read_text().strip() if sidecar.is_file() else ""
    ref = save_reference_frame(gt, out_dir / "reference" / f"{cid}.png", frame)
    wav = _wav(out_dir / "audio" / f"{cid}.wav", audio, SAMPLE_RATE)
    return Case(id=cid, reference=(ref,), audio=wav, instruction=text or instruction,
                duration_class=duration_class_for(length), language=language, ground_truth=gt.resolve(),
                identity=identity_from_name(src.stem), duration_s=round(length, 4),
                source={"file": src.name, "benchmark_recipe": bench_name})


def build_clip_benchmark(folder: str | Path, out_dir: str | Path, name: str = "hdtf", language: str = "en",
                         instruction: str = DEFAULT_INSTRUCTION, reference_frame: int = 0,
                         max_duration_s: float | None = None) -> RecipeResult:
    """HDTF-style benchmark: one case per clip of `folder` (whole clip, or its first `max_duration_s`).

    Instruction: the clip's sidecar `<stem>.txt` when present, else `instruction`. Identity: the file name
    without a trailing clip number. Clips that cannot be used are listed in `skipped` with the reason.
    """
    folder, out_dir = Path(folder), Path(out_dir)
    cases, skipped = [], []
    for src in _clips(folder):
        cid = safe_id(src.stem)
        if cid in {c.id for c in cases}:
            skipped.append((src.name, f"duplicate case id {cid!r}"))
            continue
        try:
            cases.append(_clip_case(src, out_dir, cid, language, instruction, reference_frame, max_duration_s, name))
        except (MediaError, ValueError) as exc:
            skipped.append((src.name, f"{getattr(exc, 'reason', 'invalid')}: {exc}"))
    return _finish(name, cases, skipped, out_dir, language, folder,
                   {"builder": "clips", "reference_frame": reference_frame, "max_duration_s": max_duration_s})


def build_long_benchmark(folder: str | Path, out_dir: str | Path, duration_class: str = "1min",
                         name: str | None = None, language: str = "en", instruction: str = DEFAULT_INSTRUCTION,
                         reference_frame: int = 0) -> RecipeResult:
    """Long-video benchmark: from each clip at least the class's nominal length (60 s or 300 s), one case of
    exactly that length (ground truth cut by a streamed re-encode). Shorter clips are skipped with the reason."""
    if duration_class not in DURATION_CLASSES or duration_class == "short":
        raise ValueError(f"duration_class must be a long class ('1min', '5min'), got {duration_class!r}")
    nominal = DURATION_CLASSES[duration_class][0]
    folder, out_dir = Path(folder), Path(out_dir)
    name = name or f"long_{duration_class}"
    cases, skipped = [], []
    for src in _clips(folder):
        cid = f"{safe_id(src.stem)}_{duration_class}"
        try:
            audio = read_audio(src, SAMPLE_RATE, duration_s=nominal + 1)
            have = 0.0 if audio is None else audio.size / SAMPLE_RATE
            if have + 1e-6 < nominal:
                skipped.append((src.name, f"too_short: {have:.1f} s of audio, {duration_class} needs {nominal:g} s"))
                continue
            cases.append(_clip_case(src, out_dir, cid, language, instruction, reference_frame, nominal, name))
        except (MediaError, ValueError) as exc:
            skipped.append((src.name, f"{getattr(exc, 'reason', 'invalid')}: {exc}"))
    return _finish(name, cases, skipped, out_dir, language, folder,
                   {"builder": "long", "duration_class": duration_class, "reference_frame": reference_frame})


def _finish(name: str, cases: list[Case], skipped, out_dir: Path, language: str, folder: Path,
            recipe: dict[str, Any]) -> RecipeResult:
    for f, why in skipped:
        log.warning("benchmark %s: skipped %s (%s)", name, f, why)
    if not cases:
        raise ValueError(f"no usable clip in {folder}: " + "; ".join(f"{f}: {w}" for f, w in skipped))
    bench = Benchmark(name=name, version="1", cases=cases, root=out_dir, language=language,
                      description=f"Built from the clips in {folder}.", recipe=recipe | {"skipped": [list(s) for s in skipped]})
    bench.save(out_dir / "benchmark.yaml")
    return RecipeResult(bench, skipped)
