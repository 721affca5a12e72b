"""Audio side of the Sync-C / Sync-D protocol: 16 kHz mono, int16 scale, MFCC as python_speech_features.

The reference extracts audio with ``ffmpeg -ac 1 -acodec pcm_s16le -ar 16000`` and reads it with
``scipy.io.wavfile`` (int16 values), then calls ``python_speech_features.mfcc(audio, 16000)`` with its
defaults (25 ms window, 10 ms step, 13 cepstra, 26 filters, 512-point FFT, pre-emphasis 0.97, lifter 22,
c0 replaced by log frame energy). The log energy makes the result depend on the sample scale, so float
samples are brought to the int16 scale first, rounded as FFmpeg's float->s16 conversion does.
4 MFCC frames (10 ms) make one 25 fps video frame (40 ms); 640 samples per video frame.
"""

from __future__ import annotations

import numpy as np
import python_speech_features

from kling.clock import SAMPLE_RATE, SAMPLES_PER_FRAME

SILENCE_DBFS = -60.0  # RMS below this over the whole clip: treated as silent


def to_int16_scale(samples: np.ndarray) -> np.ndarray:
    """Samples as int16 values (float64 array). Float input in [-1, 1] is scaled by 32768 and rounded to
    nearest (FFmpeg's lrintf) then clipped; integer input is taken as is."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"mono audio expected, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float64)
    return np.clip(np.rint(x.astype(np.float64) * 32768.0), -32768, 32767)


def compute_mfcc(samples_int16: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(13, M) float32 MFCC of int16-scale samples, exactly the reference's call and layout."""
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"the protocol needs {SAMPLE_RATE} Hz audio, got {sample_rate}")
    mfcc = python_speech_features.mfcc(np.asarray(samples_int16, dtype=np.float64), sample_rate)
    return np.ascontiguousarray(mfcc.T, dtype=np.float32)


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of float [-1, 1] samples in dBFS (-inf for digital silence)."""
    x = np.asarray(samples, dtype=np.float64)
    if np.issubdtype(np.asarray(samples).dtype, np.integer):
        x = x / 32768.0
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def is_silent(samples: np.ndarray, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    return level_dbfs(samples) < threshold_dbfs


def frames_covered(n_samples: int) -> int:
    """Whole video frames the audio covers (the reference's floor(len(audio) / 640))."""
    return int(n_samples) // SAMPLES_PER_FRAME
