"""The audio expert's measurements: speech segments and pauses (silero VAD), energy and pitch contours,
speaking rate, an arousal estimate, speaker turns (one track per speaker), and a transcript when an ASR
endpoint speaking the OpenAI audio transcription protocol is configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kling.director.schema import AudioReading, SpeechSegment
from kling.io.audio import read_audio
from kling.perception.prosody import (arousal_label, arousal_of, fold_octaves, pitch_contour, semitones,
                                      speaking_rate)
from kling.clock import FPS, SAMPLE_RATE as SR  # contours: one value per video frame
from kling.perception.speech import detect_speech, rms_envelope

log = logging.getLogger(__name__)

MIN_PAUSE_S = 0.15


class AudioInputError(ValueError):
    """The audio cannot be read at all (missing file, no audio stream)."""


@dataclass
class AudioAnalysis:
    reading: AudioReading
    energy_db: np.ndarray  # per 1/FPS s, all tracks mixed
    pitch_hz: np.ndarray  # per 1/FPS s, NaN where unvoiced
    speech: np.ndarray  # bool per 1/FPS s, any speaker

    def window(self, t0: float, t1: float) -> dict:
        """Level, pitch spread and speech share inside [t0, t1): what a shot's emotion is read from."""
        a, b = int(t0 * FPS), max(int(t0 * FPS) + 1, int(np.ceil(t1 * FPS)))
        sp = self.speech[a:b]
        e = self.energy_db[a:b][sp] if sp.any() else self.energy_db[a:b]
        p = self.pitch_hz[a:b]
        p = p[np.isfinite(p)]
        return {"speech": float(sp.mean()) if len(sp) else 0.0,
                "energy_db": float(np.mean(e)) if len(e) else -90.0,
                "pitch_hz": float(np.median(p)) if len(p) else None,
                "pitch_range": semitones(p)}


def analyse_audio(paths: list[str | Path], speakers: list[str] | None = None, asr=None) -> AudioAnalysis:
    """Measure the tracks (one per speaker, same timeline). Raises AudioInputError when a track cannot be read.

    ``asr``: a callable(path) -> text (kling.director.asr.Transcriber) or None.
    """
    if not paths:
        raise AudioInputError("no audio given")
    speakers = list(speakers or [f"speaker_{i + 1}" for i in range(len(paths))])
    if len(speakers) != len(paths):
        raise AudioInputError(f"{len(paths)} audio tracks but {len(speakers)} speaker names")
    tracks, notes = [], []
    for p in paths:
        if not Path(p).is_file():
            raise AudioInputError(f"audio file not found: {p}")
        x = read_audio(p, SR)
        if x is None:
            raise AudioInputError(f"{p}: no audio stream")
        tracks.append(x)
    n = max(len(x) for x in tracks)
    if n == 0:
        raise AudioInputError("the audio is empty (0 samples)")
    duration = n / SR
    n_frames = int(np.ceil(duration * FPS))
    mix = np.zeros(n, np.float32)
    segments: list[SpeechSegment] = []
    speech_any = np.zeros(n_frames, bool)
    for x, name in zip(tracks, speakers):
        mix[: len(x)] += x
        vad = detect_speech(x, SR, fps=FPS, n_frames=n_frames)
        if vad.reason:
            notes.append(f"{name}: no speech ({vad.reason})")
        segments += [SpeechSegment(start_s=round(a, 3), end_s=round(b, 3), speaker=name) for a, b in vad.segments]
        speech_any |= vad.frame_speech
    segments.sort(key=lambda s: (s.start_s, s.speaker))
    env = rms_envelope(mix, SR, FPS, n_frames)
    energy = 20 * np.log10(np.maximum(env, 1e-5))
    pitch = pitch_contour(mix, SR, FPS)[:n_frames]
    pitch[~speech_any[: len(pitch)]] = np.nan
    if speech_any.any():  # weak frames (syllable edges, bursts) give harmonic picks: voiced = within 20 dB of loud
        pitch[energy[: len(pitch)] < np.percentile(energy[speech_any], 95) - 20] = np.nan
    pitch = fold_octaves(pitch)
    voiced = pitch[np.isfinite(pitch)]
    level = float(energy[speech_any].mean()) if speech_any.any() else float(energy.mean())
    prange = semitones(voiced)
    rate = speaking_rate(env, speech_any)
    arousal = arousal_of(level, prange, rate) if speech_any.any() else 0.0
    transcript = None
    if asr is not None:
        try:
            transcript = " ".join(t for t in (asr(p) for p in paths) if t) or None
        except Exception as exc:  # noqa: BLE001 - an ASR endpoint that fails is a note, not a failed storyline
            notes.append(f"transcript unavailable: {exc}")
    reading = AudioReading(
        duration_s=round(duration, 3), segments=segments, pauses=pauses_of(segments, duration),
        speech_ratio=float(speech_any.mean()), speaking_rate_sps=round(rate, 2), energy_db=round(level, 1),
        pitch_hz=round(float(np.median(voiced)), 1) if len(voiced) else None,
        pitch_range_semitones=round(prange, 1) if prange is not None else None,
        arousal=round(arousal, 3), arousal_label=arousal_label(arousal), speakers=speakers,
        transcript=transcript, notes=notes)
    return AudioAnalysis(reading, energy, pitch, speech_any)


def pauses_of(segments: list[SpeechSegment], duration: float, min_pause_s: float = MIN_PAUSE_S) -> list:
    """Silences between speech (any speaker) of at least min_pause_s, and the silence before and after it."""
    spans = sorted((s.start_s, s.end_s) for s in segments)
    out, t = [], 0.0
    for a, b in spans:
        if a - t >= min_pause_s:
            out.append((round(t, 3), round(a, 3)))
        t = max(t, b)
    if duration - t >= min_pause_s:
        out.append((round(t, 3), round(duration, 3)))
    return out
