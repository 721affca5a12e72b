"""Prosody of a speech track: pitch contour, speaking rate, pitch spread and an arousal estimate.

Shared by curation's captions and the director's audio expert. Values are per video frame (FPS) on the
track's timeline; SR is the media clock's sample rate (kling.clock).
"""

from __future__ import annotations

import numpy as np

from kling.clock import FPS, SAMPLE_RATE as SR


def semitones(p: np.ndarray) -> float | None:
    if len(p) < 5:
        return None
    lo, hi = np.percentile(p, [10, 90])
    return float(12 * np.log2(hi / lo)) if lo > 0 else None


def pitch_contour(x: np.ndarray, sr: int = SR, fps: float = FPS, fmin: float = 60.0, fmax: float = 400.0,
                  min_corr: float = 0.45) -> np.ndarray:
    """f0 per frame by normalised autocorrelation over a 40 ms window (NaN where unvoiced)."""
    hop = int(round(sr / fps))
    win = 2 * hop
    n = int(np.ceil(len(x) / hop))
    out = np.full(n, np.nan)
    lag_lo, lag_hi = int(sr / fmax), int(sr / fmin)
    padded = np.pad(x.astype(np.float64), (0, win))
    for i in range(n):
        seg = padded[i * hop: i * hop + win]
        seg = seg - seg.mean()
        # centre clipping (Sondhi): flattens the formants, so a low first formant is not taken for f0
        c = 0.3 * float(np.abs(seg).max())
        seg = np.where(seg > c, seg - c, np.where(seg < -c, seg + c, 0.0))
        energy = float(seg @ seg)
        if energy < 1e-6:
            continue
        spec = np.fft.rfft(seg, 2 * win)
        ac = np.fft.irfft(spec * np.conj(spec))[: win]
        ac = ac / ac[0]
        lag = lag_lo + int(np.argmax(ac[lag_lo:lag_hi]))
        if ac[lag] >= min_corr:
            out[i] = sr / lag
    return out


def fold_octaves(pitch: np.ndarray) -> np.ndarray:
    """Octave errors of autocorrelation (a harmonic or a sub-harmonic picked) folded back towards the median."""
    p = pitch.copy()
    ok = np.isfinite(p)
    if ok.sum() < 3:
        return p
    m = float(np.median(p[ok]))
    for _ in range(2):
        p[ok & (p > 1.5 * m)] /= 2
        p[ok & (p < m / 1.5)] *= 2
    return p


def speaking_rate(env: np.ndarray, speech: np.ndarray, fps: float = FPS) -> float:
    """Syllable-like peaks of the smoothed envelope per second of speech."""
    secs = speech.sum() / fps
    if secs < 0.25:
        return 0.0
    sm = np.convolve(env, np.ones(3) / 3, mode="same")
    thr = 0.3 * (sm[speech].max() if speech.any() else 0)
    peaks = (sm[1:-1] > sm[:-2]) & (sm[1:-1] >= sm[2:]) & (sm[1:-1] > thr) & speech[1:-1]
    return float(peaks.sum() / secs)


def arousal_of(energy_db: float, pitch_range: float | None, rate: float) -> float:
    """0 calm .. 1 agitated: the mean of level, pitch spread and rate, each mapped to [0, 1] over a
    conversational range (-40..-10 dBFS, 0..12 semitones, 2..7 syllables/s)."""
    parts = [np.clip((energy_db + 40) / 30, 0, 1), np.clip((rate - 2) / 5, 0, 1)]
    if pitch_range is not None:
        parts.append(np.clip(pitch_range / 12, 0, 1))
    return float(np.mean(parts))


def arousal_label(a: float) -> str:
    return "calm" if a < 0.35 else ("moderate" if a < 0.6 else "aroused")
