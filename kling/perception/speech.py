"""Voice activity (silero-vad), speech-to-face-track binding, and optional pyannote diarization.

VAD follows silero-vad's own protocol: 512-sample windows at 16 kHz, state reset per file, the last window
zero-padded, then ``get_speech_timestamps_from_probs`` with its defaults (threshold 0.5, min speech 250 ms,
min silence 100 ms, pad 30 ms) - the same result as ``get_speech_timestamps`` but with one model pass, which
also gives the per-window probabilities that the per-frame array is made from.

A long track is analysed as it is decoded (``scan_audio`` over kling.io.audio.iter_audio blocks): the model's
recurrent state, the RMS envelope's running sums and the level's sum carry from block to block, so the
results equal the whole-track functions bit for bit while memory holds one block.

Silent audio or no audio stream is a result (no segments, speech_ratio 0, ``reason`` set), not an error.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from kling.clock import FPS, SAMPLE_RATE

log = logging.getLogger(__name__)

VAD_WINDOW = 512  # samples per silero window at 16 kHz (32 ms)


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    min_speech_duration_ms: int = 250
    min_silence_duration_ms: int = 100
    speech_pad_ms: int = 30
    silence_rms: float = 1e-4  # below this RMS the audio is digital silence: skip the model


@dataclass
class SpeechResult:
    """VAD of one audio track on the video's frame timeline.

    segments: (start_s, end_s) speech intervals; frame_speech: bool per video frame (frame centre inside a
    segment); frame_prob: max silero probability over the windows overlapping each frame; reason: None when
    speech was found, else "no_audio" / "silent" / "no_speech".
    """

    segments: list[tuple[float, float]]
    frame_speech: np.ndarray
    frame_prob: np.ndarray
    speech_ratio: float
    duration_s: float
    fps: float
    reason: str | None = None

    def segments_frame(self) -> pd.DataFrame:
        """Speech segments as a table (segment, start_s, end_s)."""
        return pd.DataFrame({"segment": np.arange(len(self.segments), dtype=np.int32),
                             "start_s": [a for a, _ in self.segments], "end_s": [b for _, b in self.segments]})


@functools.lru_cache(maxsize=1)
def load_vad():
    """The bundled silero-vad TorchScript model, loaded once per process.

    Importing silero_vad calls torch.set_num_threads(1) as a side effect; the caller's setting is restored.
    """
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad

        with warnings.catch_warnings():  # its importlib.resources / torch.jit.load deprecation notices
            warnings.simplefilter("ignore", DeprecationWarning)
            model = load_silero_vad()
    finally:
        torch.set_num_threads(threads)
    return model


def speech_probabilities(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """silero probability per 512-sample window (32 ms), as get_speech_timestamps computes them."""
    vad = VadStream(sample_rate)
    vad.push(samples)
    return vad.finish()


_VAD_OWNER = [0]  # token of the VadStream whose recurrent state the shared (lru-cached) model now holds
_VAD_TOKENS = itertools.count(1)


class VadStream:
    """silero probabilities of a track given in blocks of any size, with one model pass per 512-sample window.

    The model's recurrent state is reset once, at the start, and carried across blocks; samples that do not
    fill a window wait for the next block, and only the track's last window is zero-padded. So the
    probabilities are those of one pass over the whole track (``speech_probabilities``), bit for bit, while
    memory holds one block. The model is shared per process: starting another stream invalidates this one.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"VAD expects {SAMPLE_RATE} Hz audio, got {sample_rate}")
        self.sample_rate = sample_rate
        self._model = load_vad()
        self._model.reset_states()
        self._token = _VAD_OWNER[0] = next(_VAD_TOKENS)
        self._rest = np.zeros(0, np.float32)  # samples short of a whole window
        self._probs: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> None:
        if _VAD_OWNER[0] != self._token:
            raise RuntimeError("another VadStream reset the shared silero model; finish one stream at a time")
        x = np.asarray(samples, np.float32).reshape(-1)
        if len(self._rest):
            x = np.concatenate([self._rest, x])
        whole = len(x) // VAD_WINDOW * VAD_WINDOW
        if whole:
            self._probs.append(self._run(x[:whole]))
        self._rest = x[whole:].copy()

    def finish(self) -> np.ndarray:
        """The probabilities, the zero-padded last window included."""
        if len(self._rest):
            last = np.zeros(VAD_WINDOW, np.float32)
            last[: len(self._rest)] = self._rest
            self.push(last[len(self._rest):])  # completes the window: same as padding the whole track
        return np.concatenate(self._probs) if self._probs else np.zeros(0, np.float32)

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        audio = torch.from_numpy(np.ascontiguousarray(x))
        probs = np.empty(len(x) // VAD_WINDOW, np.float32)
        # The model is a chain of tiny ops: intra-op threads only add overhead (measured 0.27 s on 1 thread vs
        # 11 s on 2 busy cores for 20 s of audio), so run single-threaded and give the caller its setting back.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                for i in range(len(probs)):
                    chunk = audio[i * VAD_WINDOW:(i + 1) * VAD_WINDOW]
                    probs[i] = float(self._model(chunk, self.sample_rate).item())
        finally:
            torch.set_num_threads(threads)
        return probs


def _frame_arrays(segments, probs, n_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(n_frames) + 0.5) / fps
    speech = np.zeros(n_frames, bool)
    for a, b in segments:
        speech |= (centres >= a) & (centres < b)
    frame_prob = np.zeros(n_frames, np.float32)
    if len(probs) and n_frames:
        # a 40 ms frame overlaps at most ceil(40/32)+1 windows: take the max over that many, masked by range
        win_s = VAD_WINDOW / SAMPLE_RATE
        idx = np.arange(n_frames)
        lo = np.floor(idx / fps / win_s + 1e-9).astype(np.int64)
        hi = np.maximum(lo + 1, np.ceil((idx + 1) / fps / win_s - 1e-9).astype(np.int64))
        width = int((hi - lo).max())
        cols = lo[:, None] + np.arange(width)[None, :]
        valid = (cols < hi[:, None]) & (cols < len(probs))
        vals = np.where(valid, probs[np.minimum(cols, len(probs) - 1)], 0.0)
        frame_prob = vals.max(axis=1).astype(np.float32)
    return speech, frame_prob


def detect_speech(
    samples: np.ndarray | None,
    sample_rate: int = SAMPLE_RATE,
    fps: float = FPS,
    n_frames: int | None = None,
    config: VadConfig = VadConfig(),
) -> SpeechResult:
    """Voice activity of 16 kHz mono float32 ``samples`` (None = the file has no audio stream).

    ``n_frames`` sets the length of the per-frame arrays (default: audio duration x fps, rounded up).
    """
    if samples is None:
        n = int(n_frames or 0)
        return SpeechResult([], np.zeros(n, bool), np.zeros(n, np.float32), 0.0, 0.0, fps, "no_audio")
    samples = np.asarray(samples, np.float32).reshape(-1)
    silent = len(samples) == 0 or float(np.sqrt(mean_square(samples))) < config.silence_rms
    probs = None if silent else speech_probabilities(samples, sample_rate)  # silence skips the model
    return _speech_result(probs, len(samples), sample_rate, fps, n_frames, config)


@dataclass
class AudioScan:
    """One pass over a track (see scan_audio): silero probabilities per window, RMS per video frame (to the
    end of the audio), mean square (the silence check) and the length in samples."""

    probs: np.ndarray
    envelope: np.ndarray
    mean_square: float
    n_samples: int
    sample_rate: int
    fps: float


def scan_audio(blocks: Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE, fps: float = FPS) -> AudioScan:
    """VAD, RMS envelope and level of a track given in blocks (kling.io.audio.iter_audio), in one pass that
    holds a block at a time; each figure equals the whole-track computation bit for bit."""
    vad, env, level = VadStream(sample_rate), EnvelopeStream(sample_rate, fps), SquareSum()
    for block in blocks:
        vad.push(block)
        env.push(block)
        level.push(block)
    return AudioScan(vad.finish(), env.finish(), level.mean(), level.n, sample_rate, fps)


def speech_from_scan(scan: AudioScan, n_frames: int | None = None, config: VadConfig = VadConfig()) -> SpeechResult:
    """detect_speech's result from a scan_audio pass (the model ran even on silence: same result, one decode)."""
    silent = scan.n_samples == 0 or float(np.sqrt(scan.mean_square)) < config.silence_rms
    return _speech_result(None if silent else scan.probs, scan.n_samples, scan.sample_rate, scan.fps, n_frames,
                          config)


def _speech_result(probs: np.ndarray | None, n_samples: int, sample_rate: int, fps: float, n_frames: int | None,
                   config: VadConfig) -> SpeechResult:
    """Segments and per-frame arrays from the window probabilities; ``probs`` None means silent audio."""
    duration = n_samples / sample_rate
    n = int(n_frames) if n_frames is not None else int(np.ceil(duration * fps - 1e-9))
    if probs is None:
        return SpeechResult([], np.zeros(n, bool), np.zeros(n, np.float32), 0.0, duration, fps, "silent")
    from silero_vad import get_speech_timestamps_from_probs

    stamps = get_speech_timestamps_from_probs(
        probs.tolist(), sampling_rate=sample_rate, threshold=config.threshold,
        min_speech_duration_ms=config.min_speech_duration_ms,
        min_silence_duration_ms=config.min_silence_duration_ms, speech_pad_ms=config.speech_pad_ms,
        audio_length_samples=n_samples,
    )
    segments = [(s["start"] / sample_rate, s["end"] / sample_rate) for s in stamps]
    speech, frame_prob = _frame_arrays(segments, probs, n, fps)
    ratio = float(speech.mean()) if n else 0.0
    if not segments:
        log.info("VAD: no speech in %.1f s of audio", duration)
    return SpeechResult(segments, speech, frame_prob, ratio, duration, fps, None if segments else "no_speech")


def detect_speech_file(path: str | Path, fps: float = FPS, n_frames: int | None = None,
                       config: VadConfig = VadConfig()) -> SpeechResult:
    """VAD of a media file's audio, streamed with kling.io.audio.iter_audio (no audio stream -> "no_audio")."""
    from kling.io.audio import iter_audio

    blocks = iter_audio(path, sample_rate=SAMPLE_RATE)
    if blocks is None:
        return detect_speech(None, SAMPLE_RATE, fps=fps, n_frames=n_frames, config=config)
    return speech_from_scan(scan_audio(blocks, SAMPLE_RATE, fps), n_frames=n_frames, config=config)


def rms_envelope(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, fps: float = FPS,
                 n_frames: int | None = None) -> np.ndarray:
    """RMS of the audio over each video frame's span (float32, zero past the end of the audio)."""
    env = EnvelopeStream(sample_rate, fps)
    env.push(samples)
    return env.finish(n_frames)


_ENVELOPE_BLOCK = 1500  # frames (60 s at 25 fps): the float64 running sum restarts at each block's first sample


class EnvelopeStream:
    """rms_envelope of a track given in blocks of any size, computed as the samples arrive.

    Each frame's RMS is sqrt((S(end) - S(start)) / count) with S the float64 running sum of squares, which
    restarts every _ENVELOPE_BLOCK frames (bounded magnitude, so no loss of precision on long tracks). The
    running sum is carried from one pushed block to the next with the same additions in the same order, so
    the result does not depend on how the track was cut, and memory holds one pushed block.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, fps: float = FPS):
        self.hop = sample_rate / fps
        self._pos = 0  # samples seen
        self._f = 0  # first frame not complete yet
        self._run = 0.0  # running sum of squares since the first sample of the current envelope block
        self._at_start = 0.0  # the running sum at the start edge of frame self._f
        self._next_block = _ENVELOPE_BLOCK  # first frame of the next envelope block
        self._env: list[np.ndarray] = []

    def _edge(self, frame: int) -> int:
        return int(np.round(frame * self.hop))

    def push(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float32).reshape(-1)
        i = 0
        while i < len(x):
            take = min(len(x) - i, self._edge(self._next_block) - self._pos)
            self._add(x[i:i + take])
            i += take
            if self._pos == self._edge(self._next_block):  # every frame of the block is complete: restart S
                self._run = self._at_start = 0.0
                self._next_block += _ENVELOPE_BLOCK

    def _add(self, piece: np.ndarray) -> None:
        """Samples inside one envelope block: extend S and complete the frames that end inside them."""
        p0, p1 = self._pos, self._pos + len(piece)
        run = np.cumsum(np.concatenate([[self._run], np.square(piece, dtype=np.float64)]))  # run[k] = S(p0 + k)
        ends = np.round(np.arange(self._f + 1, self._f + 3 + int(len(piece) / self.hop)) * self.hop).astype(np.int64)
        ends = ends[ends <= p1]
        if len(ends):
            s_end = run[ends - p0]
            s_start = np.concatenate([[self._at_start], s_end[:-1]])
            cnt = ends - np.concatenate([[self._edge(self._f)], ends[:-1]])
            env = np.zeros(len(ends), np.float32)
            ok = cnt > 0
            env[ok] = np.sqrt((s_end[ok] - s_start[ok]) / cnt[ok])
            self._env.append(env)
            self._f += len(ends)
            self._at_start = s_end[-1]
        self._run, self._pos = run[-1], p1

    def finish(self, n_frames: int | None = None) -> np.ndarray:
        """The envelope: ``n_frames`` long (default: the audio's duration x fps, rounded up); a frame that runs
        past the end of the audio is the RMS of the samples it has, later frames are zero."""
        n = int(n_frames) if n_frames is not None else int(np.ceil(self._pos / self.hop - 1e-9))
        if self._f < n:
            tail = np.zeros(n - self._f, np.float32)
            cnt = self._pos - self._edge(self._f)
            if cnt > 0:
                tail[0] = np.sqrt((self._run - self._at_start) / cnt)
            self._env.append(tail)
            self._f = n
        env = np.concatenate(self._env) if self._env else np.zeros(0, np.float32)
        return env[:n]  # frames completed past an explicit, shorter n_frames are dropped


_SQUARE_BLOCK = 1 << 16  # samples (4 s) summed at a time: a 512 KiB float64 temporary


def mean_square(samples: np.ndarray, block: int = _SQUARE_BLOCK) -> float:
    """Mean of squares in float64, accumulated over blocks (no whole-track float64 copy)."""
    total = 0.0
    for i in range(0, len(samples), block):
        total += float(np.square(samples[i : i + block], dtype=np.float64).sum())
    return total / max(len(samples), 1)


class SquareSum:
    """mean_square of a track given in blocks of any size: re-cut into mean_square's blocks, so the float64
    sum is accumulated in the same order and the result is the same number."""

    def __init__(self, block: int = _SQUARE_BLOCK):
        from kling.io.audio import Rebuffer

        self._blocks = Rebuffer(block)
        self._total = 0.0
        self.n = 0

    def push(self, samples: np.ndarray) -> None:
        for b in self._blocks.push(samples):
            self._total += float(np.square(b, dtype=np.float64).sum())
        self.n += len(samples)

    def mean(self) -> float:
        for b in self._blocks.flush():
            self._total += float(np.square(b, dtype=np.float64).sum())
        return self._total / max(self.n, 1)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.std(x) < 1e-9 or np.std(y) < 1e-9:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _band(x: np.ndarray, smooth: int, detrend: int) -> np.ndarray:
    """Moving average over ``smooth`` frames minus the moving average over ``detrend`` frames: keeps the
    syllable-rate movement (about 3-12 Hz at 25 fps) and drops a mouth held open or a slow change of level."""
    def ma(v, k):
        return np.convolve(v, np.ones(k) / k, mode="same") if k > 1 else v
    y = ma(x, smooth)
    return y - ma(y, detrend)


def mouth_audio_sync(mouth: np.ndarray, envelope: np.ndarray, frames: np.ndarray | None = None, smooth: int = 3,
                     detrend: int = 7, max_lag: int = 2) -> tuple[float, int, int]:
    """How well a face's mouth opening follows the voice: (corr, lag, n). ``mouth``: mouth_open per frame of one
    run of consecutive frames (NaN where unknown, filled with the run's median); ``envelope``: the audio's RMS
    on the same frames; ``frames``: positions (into the run) to correlate on, e.g. its speech frames (default
    all). Both are band-passed (_band), then corr = the largest Pearson correlation over lags -max_lag..max_lag
    frames (mouth and voice are not frame-exact in real footage). NaN when fewer than 10 frames are usable.

    Measured on the three real 8 s HDTF clips of ../shared/data (issue 12), all frames: own audio 0.29-0.40,
    another clip's audio 0.03-0.17; side by side with one voice: the speaker 0.26, the other face 0.09. The raw
    frame-level correlation (bind_speakers' corr_open) did not separate them (own audio -0.12..0.25, another
    clip's audio up to 0.23). Demo clips: 0.97-0.99."""
    m = np.asarray(mouth, np.float64)
    e = np.asarray(envelope, np.float64)[: len(m)]
    m = m[: len(e)]
    if np.isfinite(m).sum() < 10:
        return float("nan"), 0, 0
    m = np.where(np.isfinite(m), m, np.nanmedian(m))
    a, b = _band(m, smooth, detrend), _band(e, smooth, detrend)
    sel = np.zeros(len(m), bool)
    sel[np.arange(len(m)) if frames is None else np.asarray(frames, np.int64)] = True
    sel[: detrend // 2] = sel[len(m) - detrend // 2:] = False  # edges see the zero padding of the averages
    best, best_lag, n_best = float("nan"), 0, 0
    for lag in range(-max_lag, max_lag + 1):  # lag > 0: the voice comes `lag` frames after the mouth
        idx = np.flatnonzero(sel)
        idx = idx[(idx + lag >= 0) & (idx + lag < len(b))]
        c = _corr(a[idx], b[idx + lag]) if len(idx) >= 10 else float("nan")
        if np.isfinite(c) and not (c <= best):
            best, best_lag, n_best = c, lag, len(idx)
    return best, best_lag, n_best


BINDING_COLUMNS = ["segment", "start_s", "end_s", "track_id", "score", "corr_open", "corr_motion",
                   "coverage", "n_candidates", "status"]


def bind_speakers(
    segments: list[tuple[float, float]],
    face_tracks: pd.DataFrame,
    samples: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    fps: float = FPS,
    min_frames: int = 5,
    *,
    envelope: np.ndarray | None = None,
) -> pd.DataFrame:
    """Bind each speech segment to the visible face track whose mouth follows the audio.

    For each track visible during the segment: corr_open = Pearson(mouth_open, RMS envelope) and corr_motion =
    Pearson(|d mouth_open/dt|, |d RMS/dt|) over the frames where the track is seen with a known mouth_open;
    score = mean of the two that exist. On real footage a segment's correlation does not tell the speaker from
    another face (side by side with one voice, a 3 s segment was bound to the silent face, raw or band-passed):
    the lip-sync step judges each clip on all its speech frames instead (kling.curate.lipsync, judge "mouth").
    The best-scoring track is bound (status "bound"). When no track is seen
    the segment is "unbound"; when tracks are seen but none has enough mouth signal (fewer than ``min_frames``
    frames, or a constant mouth), the track seen most is bound with score NaN and status "coverage_only".
    ``envelope``: the audio's rms_envelope at ``fps`` when already computed (e.g. AudioScan.envelope), in
    place of ``samples``; only the columns frame, track_id and mouth_open of ``face_tracks`` are used.
    """
    rows = []
    if envelope is not None:
        env = np.asarray(envelope, np.float32)
    else:
        env = rms_envelope(samples, sample_rate, fps) if samples is not None else np.zeros(0, np.float32)
    ft = face_tracks if face_tracks is not None else pd.DataFrame(columns=["frame", "track_id", "mouth_open"])
    ft = ft[["frame", "track_id", "mouth_open"]].sort_values("frame", kind="stable")
    ft_frames = ft["frame"].to_numpy(np.int64)
    for si, (s0, s1) in enumerate(segments):
        f0, f1 = int(np.floor(s0 * fps)), int(np.ceil(s1 * fps))
        seg_len = max(f1 - f0, 1)
        lo, hi = np.searchsorted(ft_frames, [f0, f1])
        inside = ft.iloc[lo:hi]
        best = dict(track_id=-1, score=np.nan, corr_open=np.nan, corr_motion=np.nan, coverage=0.0)
        status = "unbound"
        candidates = []
        for tid, g in inside.groupby("track_id", sort=True):
            g = g.sort_values("frame")
            frames = g["frame"].to_numpy(np.int64)
            mouth = g["mouth_open"].to_numpy(np.float64)
            cov = len(np.unique(frames)) / seg_len
            ok = np.isfinite(mouth) & (frames < len(env))
            c_open = c_mot = np.nan
            if ok.sum() >= min_frames:
                fr, m = frames[ok], mouth[ok]
                e = env[fr].astype(np.float64)
                c_open = _corr(m, e)
                consecutive = np.diff(fr) == 1  # derivatives only across adjacent frames
                if consecutive.sum() >= min_frames - 1:
                    c_mot = _corr(np.abs(np.diff(m))[consecutive], np.abs(np.diff(e))[consecutive])
            parts = [c for c in (c_open, c_mot) if np.isfinite(c)]
            score = float(np.mean(parts)) if parts else np.nan
            candidates.append(dict(track_id=int(tid), score=score, corr_open=c_open, corr_motion=c_mot,
                                   coverage=float(cov)))
        if candidates:
            scored = [c for c in candidates if np.isfinite(c["score"])]
            if scored:
                best, status = max(scored, key=lambda c: (c["score"], c["coverage"])), "bound"
            else:
                best, status = max(candidates, key=lambda c: c["coverage"]), "coverage_only"
        rows.append(dict(segment=si, start_s=float(s0), end_s=float(s1), **best,
                         n_candidates=len(candidates), status=status))
    out = pd.DataFrame(rows, columns=BINDING_COLUMNS)
    return out.astype({"segment": "int32", "track_id": "int32", "n_candidates": "int32"})


@dataclass
class DiarizationOutcome:
    """pyannote turns (start_s, end_s, speaker) or None with the reason it could not run."""

    turns: pd.DataFrame | None
    reason: str | None


def diarize_pyannote(audio_path: str | Path, pipeline_dir: str | Path | None = None) -> DiarizationOutcome:
    """Optional speaker diarization with pyannote.audio, used only when it imports AND its pipeline files are
    present locally (``pipeline_dir`` with config.yaml; default ``weights_dir()/pyannote-speaker-diarization``).
    Never downloads: the models are gated on the Hugging Face hub. Otherwise returns turns=None and a reason.
    """
    if importlib.util.find_spec("pyannote") is None or importlib.util.find_spec("pyannote.audio") is None:
        return DiarizationOutcome(None, "pyannote_not_installed")
    if pipeline_dir is None:
        try:
            from kling.paths import weights_dir
        except ImportError:
            return DiarizationOutcome(None, "no_pipeline_dir")
        pipeline_dir = Path(weights_dir()) / "pyannote-speaker-diarization"
    config = Path(pipeline_dir) / "config.yaml"
    if not config.is_file():
        return DiarizationOutcome(None, f"pipeline_files_missing: {config}")
    try:
        from pyannote.audio import Pipeline  # lazily: it imports torchaudio / lightning
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable here"
        return DiarizationOutcome(None, f"pyannote_import_failed: {type(exc).__name__}: {exc}")
    try:
        pipeline = Pipeline.from_pretrained(str(config))
        annotation = pipeline(str(audio_path))
    except Exception as exc:  # noqa: BLE001 - recorded as a skip, the VAD path still stands
        return DiarizationOutcome(None, f"pyannote_failed: {type(exc).__name__}: {exc}")
    turns = [(float(seg.start), float(seg.end), str(spk))
             for seg, _, spk in annotation.itertracks(yield_label=True)]
    return DiarizationOutcome(pd.DataFrame(turns, columns=["start_s", "end_s", "speaker"]), None)
