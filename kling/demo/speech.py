"""Speech-like audio: phrases of syllables made of voiced harmonics shaped by vowel formants.

Why this shape: voice-activity detectors (silero-vad) and lip-sync models respond to the structure of
speech, not to tones -- a pitched harmonic source with a falling intonation, vowel formants that change
every syllable, a syllable-rate (3-6 Hz) loudness pattern, short consonant noise bursts, and pauses
between phrases. The loudness envelope is returned with the audio so the renderer can open the mouth
by the same amount, frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kling.clock import SAMPLE_RATE

# (F1, F2, F3) in Hz of five vowels (adult averages, Peterson & Barney style)
_VOWELS = np.array(
    [[730, 1090, 2440], [530, 1840, 2480], [300, 2250, 2950], [570, 840, 2410], [320, 900, 2250]],
    np.float32,
)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0], np.float32)
_FORMANT_GAIN = np.array([1.0, 0.6, 0.3], np.float32)
_CTRL = 80  # control-rate hop in samples (5 ms at 16 kHz)
NOISE_FLOOR = 1e-3
# pitch micro-variation per 5 ms control frame; at 1% high voices (f0 > 180 Hz) read as tones to
# silero-vad (about half their speech missed), at 5% they read as speech (>90% covered)
JITTER = 0.05  # room-noise amplitude everywhere: "silent" audio is present but near zero


@dataclass(frozen=True)
class Speech:
    audio: np.ndarray  # float32 mono in [-1, 1]
    envelope: np.ndarray  # float32 per sample, 0..1: loudness that drives the mouth
    segments: list[tuple[float, float]]  # speech phrases (start_s, end_s)
    sample_rate: int


def _plan(rng: np.random.Generator, duration_s: float, lead_s: float, syllable_hz: tuple[float, float],
          phrase_s: tuple[float, float], pause_s: tuple[float, float]) -> list[list[tuple[float, float]]]:
    """Phrases as lists of (start, end) syllables, leaving a short silence at both ends."""
    phrases, t = [], lead_s
    end_limit = duration_s - 0.25
    while t + 0.6 < end_limit:
        length = min(rng.uniform(*phrase_s), end_limit - t)
        syl, s = [], t
        while True:
            d = 1.0 / rng.uniform(*syllable_hz)
            if s + d > t + length:
                break
            syl.append((s, s + d))
            s += d
        if len(syl) >= 2:
            phrases.append(syl)
        t = s + rng.uniform(*pause_s)
    return phrases


def synthesize_speech(
    duration_s: float,
    seed: int,
    f0: float = 120.0,
    sample_rate: int = SAMPLE_RATE,
    syllable_hz: tuple[float, float] = (3.0, 6.0),
    phrase_s: tuple[float, float] = (1.2, 2.6),
    pause_s: tuple[float, float] = (0.35, 0.75),
    lead_s: float = 0.3,
    peak: float = 0.5,
) -> Speech:
    """Deterministic speech-like signal of `duration_s` seconds (same seed -> same samples)."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    n_ctrl = n // _CTRL + 2
    tc = np.arange(n_ctrl, dtype=np.float64) * _CTRL / sample_rate  # control-frame times

    env = np.zeros(n_ctrl, np.float64)
    pitch = np.full(n_ctrl, f0, np.float64)
    formants = np.tile(_VOWELS[0], (n_ctrl, 1)).astype(np.float64)
    bursts = np.zeros(n_ctrl, np.float64)
    segments = []
    for phrase in _plan(rng, duration_s, lead_s, syllable_hz, phrase_s, pause_s):
        p0, p1 = phrase[0][0], phrase[-1][1]
        segments.append((round(p0, 4), round(p1, 4)))
        m = (tc >= p0) & (tc < p1)
        u = (tc[m] - p0) / (p1 - p0)
        # declination with a rise on a random stressed syllable
        pitch[m] = f0 * (1.08 - 0.16 * u + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * u))
        for s0, s1 in phrase:
            k = (tc >= s0) & (tc < s1)
            v = (tc[k] - s0) / (s1 - s0)
            # fast attack, slower decay, brief consonant dip at both ends
            shape = np.sin(np.pi * np.clip(v, 0, 1)) ** 0.8 * (1 - 0.35 * v)
            env[k] = rng.uniform(0.55, 1.0) * shape
            formants[k] = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.93, 1.07)
            if rng.random() < 0.5:  # fricative/plosive onset
                b = k & (tc < s0 + rng.uniform(0.03, 0.06))
                bursts[b] = rng.uniform(0.15, 0.3)
    # formant glides instead of jumps (coarticulation)
    kernel = np.hanning(9)
    kernel /= kernel.sum()
    for j in range(3):
        formants[:, j] = np.convolve(np.pad(formants[:, j], 4, mode="edge"), kernel, "valid")
    pitch *= 1.0 + JITTER * rng.standard_normal(n_ctrl)

    # control -> sample rate
    ts = np.arange(n, dtype=np.float64) / sample_rate
    env_s = np.interp(ts, tc, env)
    f0_s = np.interp(ts, tc, pitch)
    phase = 2 * np.pi * np.cumsum(f0_s) / sample_rate
    n_harm = int(3800 // (f0 * 0.9))
    audio = np.zeros(n, np.float64)
    h = np.arange(1, n_harm + 1, dtype=np.float64)
    # harmonic amplitudes at control rate: glottal tilt times formant resonances, unit power per frame
    freqs = pitch[:, None] * h[None, :]
    gain = np.full_like(freqs, 0.02)
    for j in range(3):
        gain += _FORMANT_GAIN[j] / (1.0 + ((freqs - formants[:, j : j + 1]) / (_BANDWIDTHS[j] / 2)) ** 2)
    amp = gain / h[None, :] ** 0.6
    amp[freqs > sample_rate / 2 - 200] = 0.0
    amp /= np.sqrt(0.5 * (amp**2).sum(1, keepdims=True))
    for j in range(n_harm):
        audio += np.interp(ts, tc, amp[:, j]) * np.sin(h[j] * phase)
    audio *= env_s

    noise = rng.standard_normal(n)
    hiss = np.diff(noise, prepend=0.0)  # first difference: a high-pass "s"/"t" colour
    audio += 0.5 * np.interp(ts, tc, bursts) * hiss / np.sqrt(2.0)
    if np.abs(audio).max() > 0:
        audio *= peak / np.abs(audio).max()
    audio += NOISE_FLOOR * noise
    envelope = np.clip(env_s / max(env.max(), 1e-9), 0, 1)
    return Speech(audio.astype(np.float32), envelope.astype(np.float32), segments, sample_rate)


def silence(duration_s: float, seed: int, sample_rate: int = SAMPLE_RATE) -> Speech:
    """Near-zero room noise: an audio track with no speech in it."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sample_rate))
    audio = (NOISE_FLOOR * rng.standard_normal(n)).astype(np.float32)
    return Speech(audio, np.zeros(n, np.float32), [], sample_rate)


def frame_values(x: np.ndarray, fps: float, sample_rate: int, n_frames: int, rms: bool = False) -> np.ndarray:
    """Per-video-frame mean (or RMS) of a per-sample signal over each frame's interval."""
    hop = sample_rate / fps
    out = np.zeros(n_frames, np.float64)
    for i in range(n_frames):
        seg = x[int(round(i * hop)) : int(round((i + 1) * hop))]
        if seg.size:
            out[i] = np.sqrt(np.mean(seg.astype(np.float64) ** 2)) if rms else seg.mean()
    return out
