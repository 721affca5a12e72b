"""Generate the four control systems of a benchmark (eval.leaderboard.controls says what they must satisfy):

- `control.ground_truth`: the ground-truth video with the case's driving audio, re-encoded by the same
  writer as every other output (so codec artefacts do not separate it from the systems);
- `control.audio_shifted`: the same frames with the audio delayed by `shift_s` (0.5 s: leading silence,
  tail cut so the length is unchanged);
- `control.still_reference`: the (first) reference image held still over the whole audio;
- `control.other_identity`: the ground truth of a case with another identity, looped or cut to this
  case's audio, with this case's audio.

All are streamed: frames come chunk by chunk from kling.io.decode.iter_frames into kling.io.encode.VideoWriter.
Cases without ground truth get the still-reference control only (the others are listed as skipped).
A case whose inputs and settings are unchanged since the last run is not re-encoded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from eval.benchmark_recipes import read_image
from eval.benchmarks import Benchmark, Case
from eval.leaderboard.controls import AUDIO_SHIFTED, GROUND_TRUTH, OTHER_IDENTITY, STILL_REFERENCE
from eval.systems import DESCRIPTOR, SystemDescriptor, SystemSpecError, load_system, write_descriptor
from kling.clock import FPS, SAMPLE_RATE
from kling.hashing import config_hash, file_sha256
from kling.io.audio import fit_length, read_audio, samples_for_frames
from kling.io.decode import iter_frames
from kling.io.encode import VideoWriter
from kling.io.errors import MediaError

log = logging.getLogger(__name__)

CONTROLS_VERSION = "controls/1"
CHUNK = 64


@dataclass
class ControlsResult:
    folders: dict[str, Path]  # control system name -> folder
    written: list[tuple[str, str]] = field(default_factory=list)  # (control, case) encoded this run
    reused: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (control, case, reason)


def other_identity_pairs(benchmark: Benchmark) -> dict[str, str | None]:
    """case id -> id of the next case (cyclic, spec order) with ground truth and a different identity.

    Identity unknown (None) on either side counts as different only if the cases differ; a benchmark where
    every case has the same known identity gets None (and the control is skipped for it)."""
    with_gt = [c for c in benchmark.cases if c.ground_truth is not None]
    out: dict[str, str | None] = {}
    for i, case in enumerate(benchmark.cases):
        order = benchmark.cases[i + 1:] + benchmark.cases[:i]
        pick = next((o for o in order if o in with_gt and o.id != case.id and
                     (o.identity is None or case.identity is None or o.identity != case.identity)), None)
        out[case.id] = pick.id if pick else None
    return out


def _audio(case: Case) -> np.ndarray:
    audio = read_audio(case.audio, SAMPLE_RATE)
    if audio is None or audio.size == 0:
        raise MediaError("driving audio has no samples", case.audio)
    return audio


def _gt_frames(path: Path, fps: float) -> Iterator[np.ndarray]:
    for chunk in iter_frames(path, fps=fps, chunk_size=CHUNK):
        yield chunk.frames


def _looped(path: Path, n: int, fps: float) -> Iterator[np.ndarray]:
    """Exactly `n` frames of `path`, looping it when it is shorter (streamed, re-opened per loop)."""
    left = n
    while left > 0:
        before = left
        for frames in _gt_frames(path, fps):
            take = frames[:left]
            left -= len(take)
            yield take
            if left == 0:
                return
        if left == before:
            raise MediaError("no frames decoded", path)


def _still(image: np.ndarray, n: int) -> Iterator[np.ndarray]:
    block = np.broadcast_to(image, (min(n, CHUNK),) + image.shape)
    for start in range(0, n, CHUNK):
        yield block[: min(CHUNK, n - start)]


def _encode(dst: Path, frames: Iterator[np.ndarray], audio: np.ndarray, fps: float, n_frames: int | None,
            preset: str = "fast") -> int:
    """Write frames + audio (fitted to the frame count) to dst; returns the number of frames."""
    with VideoWriter(dst, fps=fps, sample_rate=SAMPLE_RATE, preset=preset) as w:
        if n_frames is not None:  # known length: give the audio first, nothing else is buffered
            w.write_audio(fit_length(audio, samples_for_frames(n_frames, fps, SAMPLE_RATE)))
        for block in frames:
            w.write(np.ascontiguousarray(block))
        if n_frames is None:
            w.write_audio(fit_length(audio, samples_for_frames(w.frames_written, fps, SAMPLE_RATE)))
        return w.frames_written


def _shifted(audio: np.ndarray, shift_s: float) -> np.ndarray:
    lag = int(round(shift_s * SAMPLE_RATE))
    return np.concatenate([np.zeros(lag, np.float32), audio])[: audio.size] if lag > 0 else audio[-lag:]


def generate_controls(benchmark: Benchmark, out_root: str | Path, shift_s: float = 0.5, fps: float = float(FPS),
                      force: bool = False, preset: str = "fast") -> ControlsResult:
    """Write the four control systems under `out_root/<control name>/` (videos + system.yaml).

    h264 crf 18 with x264 `preset` ("fast": near-identical quality to "medium" at crf 18, ~2x quicker)."""
    out_root = Path(out_root)
    pairs = other_identity_pairs(benchmark)
    settings = {"version": CONTROLS_VERSION, "fps": fps, "benchmark": benchmark.name, "preset": preset}
    folders = {name: out_root / name for name in (GROUND_TRUTH, AUDIO_SHIFTED, STILL_REFERENCE, OTHER_IDENTITY)}
    previous = {name: _previous_hashes(f) for name, f in folders.items()}
    hashes: dict[str, dict[str, str]] = {name: {} for name in folders}
    res = ControlsResult(folders)
    by_id = {c.id: c for c in benchmark.cases}
    for case in benchmark.cases:
        audio_sha = file_sha256(case.audio)
        jobs = {STILL_REFERENCE: (case.reference[0], None)}
        if case.ground_truth is not None:
            jobs[GROUND_TRUTH] = jobs[AUDIO_SHIFTED] = (case.ground_truth, None)
        else:
            for name in (GROUND_TRUTH, AUDIO_SHIFTED):
                res.skipped.append((name, case.id, "case has no ground truth"))
        other = by_id[pairs[case.id]] if pairs[case.id] else None
        if other is not None:
            jobs[OTHER_IDENTITY] = (other.ground_truth, other.id)
        else:
            res.skipped.append((OTHER_IDENTITY, case.id, "no case of another identity has ground truth"))
        audio = None
        for name, (src, other_id) in jobs.items():
            h = config_hash(settings | {"control": name, "audio": audio_sha, "src": file_sha256(src), "other": other_id,
                                        "shift_s": shift_s if name == AUDIO_SHIFTED else None})
            dst = folders[name] / f"{case.id}.mp4"
            hashes[name][case.id] = h
            if not force and dst.is_file() and previous[name].get(case.id) == h:
                res.reused.append((name, case.id))
                continue
            audio = _audio(case) if audio is None else audio
            _write_one(name, dst, src, audio, shift_s, fps, preset)
            res.written.append((name, case.id))
    for name, folder in list(folders.items()):
        if not hashes[name]:  # no case of this benchmark makes this control (long cases have no ground truth)
            if previous[name]:  # one this function wrote for an earlier version of the benchmark
                for stale in previous[name]:
                    (folder / f"{stale}.mp4").unlink(missing_ok=True)
                (folder / DESCRIPTOR).unlink(missing_ok=True)
            res.folders.pop(name)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        extra = {"controls_version": CONTROLS_VERSION, "benchmark": benchmark.name, "case_hashes": hashes[name]}
        if name == AUDIO_SHIFTED:
            extra["shift_s"] = shift_s
        if name == OTHER_IDENTITY:
            extra["pairs"] = {k: v for k, v in pairs.items() if v}
        write_descriptor(folder, SystemDescriptor(name=name, version=CONTROLS_VERSION, kind="control",
                                                  source=f"generated from benchmark {benchmark.name}", extra=extra))
        for stale in set(previous[name]) - set(hashes[name]):
            (folder / f"{stale}.mp4").unlink(missing_ok=True)
    log.info("controls for %s: %d written, %d reused, %d skipped", benchmark.name, len(res.written),
             len(res.reused), len(res.skipped))
    return res


def _write_one(name: str, dst: Path, src: Path, audio: np.ndarray, shift_s: float, fps: float, preset: str) -> None:
    n_audio = int(round(audio.size / SAMPLE_RATE * fps))
    if name == GROUND_TRUTH:
        _encode(dst, _gt_frames(src, fps), audio, fps, None, preset)
    elif name == AUDIO_SHIFTED:
        _encode(dst, _gt_frames(src, fps), _shifted(audio, shift_s), fps, None, preset)
    elif name == STILL_REFERENCE:
        _encode(dst, _still(read_image(src), n_audio), audio, fps, n_audio, preset)
    elif name == OTHER_IDENTITY:
        _encode(dst, _looped(src, n_audio, fps), audio, fps, n_audio, preset)
    else:
        raise ValueError(f"unknown control {name!r}")


def _previous_hashes(folder: Path) -> dict[str, str]:
    try:
        return dict(load_system(folder).descriptor.extra.get("case_hashes", {}))
    except SystemSpecError:
        return {}
