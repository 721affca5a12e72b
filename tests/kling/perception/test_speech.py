"""VAD on a synthetic speech-like signal vs silence, and binding speech to the face whose mouth follows it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from kling.perception import speech

SR = 16000
FORMANTS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]


def _resonator(x: np.ndarray, f: float, bw: float) -> np.ndarray:
    r = np.exp(-np.pi * bw / SR)
    return lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)


def speech_like(duration: float, pauses=((1.5, 2.5),), seed: int = 0, syllable_hz: float = 4.0):
    """Source-filter 'speech': a glottal pulse train with intonation through vowel formants, one vowel per
    syllable with a Hann envelope and a fricative burst at each onset; zeroed during ``pauses``.
    Returns (samples float32, syllable envelope per sample)."""
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    t = np.arange(n) / SR
    f0 = 130 + 25 * np.sin(2 * np.pi * 0.5 * t)
    src = lfilter([1], [1, -0.95], np.diff(np.floor(np.cumsum(f0 / SR)), prepend=0.0))
    out, env = np.zeros(n), np.zeros(n)
    seg = int(SR / syllable_hz)
    for s0 in range(0, n, seg):
        s1 = min(n, s0 + seg)
        vowel = FORMANTS[rng.integers(len(FORMANTS))]
        w = np.hanning(s1 - s0) * rng.uniform(0.5, 1.0)
        y = sum(_resonator(src[s0:s1], f, 80 + 40 * j) for j, f in enumerate(vowel)) * w
        burst = rng.standard_normal(min(int(0.04 * SR), s1 - s0)) * 0.05
        y[:len(burst)] += _resonator(burst, 4000, 1500) * 3
        out[s0:s1], env[s0:s1] = y, w
    for a, b in pauses:
        out[(t >= a) & (t < b)] = 0
        env[(t >= a) & (t < b)] = 0
    return (0.4 * out / np.abs(out).max()).astype(np.float32), env


def test_vad_finds_speech_and_the_pause():
    x, _ = speech_like(4.0, pauses=((1.5, 2.5),))
    r = speech.detect_speech(x, n_frames=100)
    assert r.reason is None and len(r.segments) == 2
    (a0, a1), (b0, b1) = r.segments
    assert a0 < 0.2 and 1.4 < a1 < 1.75 and 2.3 < b0 < 2.6 and b1 > 3.8
    assert r.frame_speech.shape == (100,) and r.frame_prob.shape == (100,)
    assert not r.frame_speech[40:60].any() and r.frame_speech[5:35].all() and r.frame_speech[65:95].all()
    assert r.frame_prob[10:30].min() > 0.5 and r.frame_prob[45:58].max() < 0.2
    assert 0.6 < r.speech_ratio < 0.85


def test_vad_matches_get_speech_timestamps():
    import torch
    from silero_vad import get_speech_timestamps

    x, _ = speech_like(3.0, pauses=((1.0, 1.8),), seed=3)
    ours = speech.detect_speech(x)
    ref = get_speech_timestamps(torch.from_numpy(x), speech.load_vad(), sampling_rate=SR)
    assert [(s["start"] / SR, s["end"] / SR) for s in ref] == ours.segments


def test_silence_noise_and_missing_audio_are_results_not_errors():
    silent = speech.detect_speech(np.zeros(SR * 2, np.float32))
    assert silent.segments == [] and silent.speech_ratio == 0.0 and silent.reason == "silent"
    assert silent.frame_speech.shape == (50,) and not silent.frame_speech.any()
    hum = (0.05 * np.sin(2 * np.pi * 50 * np.arange(SR * 2) / SR)).astype(np.float32)  # mains hum, no voice
    r = speech.detect_speech(hum)
    assert r.segments == [] and r.speech_ratio == 0.0 and r.reason == "no_speech"
    none = speech.detect_speech(None, n_frames=30)
    assert none.reason == "no_audio" and none.frame_speech.shape == (30,) and none.speech_ratio == 0.0


def test_model_cached_and_threads_restored():
    import torch

    before = torch.get_num_threads()
    assert speech.load_vad() is speech.load_vad()
    speech.detect_speech(speech_like(1.0, pauses=())[0])
    assert torch.get_num_threads() == before


def test_rms_envelope():
    x = np.concatenate([np.zeros(640), np.full(640, 0.5), -np.full(320, 0.5)]).astype(np.float32)
    env = speech.rms_envelope(x, n_frames=4)
    np.testing.assert_allclose(env, [0.0, 0.5, 0.5, 0.0], atol=1e-6)


def _tracks(frames, track_id, mouth):
    return pd.DataFrame({"frame": np.asarray(frames, np.int32), "track_id": np.int32(track_id),
                         "mouth_open": np.asarray(mouth, np.float32)})


def test_binding_picks_the_track_whose_mouth_follows_the_audio():
    x, env = speech_like(4.0, pauses=((2.0, 2.4),), seed=1)
    rms = speech.rms_envelope(x)
    rng = np.random.default_rng(0)
    frames = np.arange(len(rms))
    speaker = 0.4 * rms / rms.max() + rng.normal(0, 0.02, len(rms))
    listener = 0.2 + 0.1 * np.sin(2 * np.pi * 0.7 * frames / 25) + rng.normal(0, 0.02, len(rms))
    # track 1 listens (talking-like but unrelated mouth motion), track 2 speaks; both visible the whole time
    ft = pd.concat([_tracks(frames, 1, listener), _tracks(frames, 2, speaker)])
    segments = [(0.0, 2.0), (2.4, 4.0), (5.0, 6.0)]  # the last one: nobody is on screen
    b = speech.bind_speakers(segments, ft, x)
    assert list(b["track_id"]) == [2, 2, -1]
    assert list(b["status"]) == ["bound", "bound", "unbound"]
    assert b["score"].iloc[0] > 0.5 and np.isnan(b["score"].iloc[2])
    assert b["n_candidates"].tolist() == [2, 2, 0]
    # swap the roles: the binding follows the mouth, not the track id
    ft2 = pd.concat([_tracks(frames, 1, speaker), _tracks(frames, 2, listener)])
    assert list(speech.bind_speakers(segments[:2], ft2, x)["track_id"]) == [1, 1]


def test_binding_without_mouth_signal_uses_coverage():
    x, _ = speech_like(2.0, pauses=())
    ft = pd.concat([_tracks(range(0, 50), 3, np.full(50, np.nan)), _tracks(range(0, 10), 4, np.full(10, np.nan))])
    b = speech.bind_speakers([(0.0, 2.0)], ft, x)
    assert b["track_id"].iloc[0] == 3 and b["status"].iloc[0] == "coverage_only"
    assert b["coverage"].iloc[0] == pytest.approx(1.0)


def test_pyannote_optional_reports_why_not(tmp_path):
    out = speech.diarize_pyannote(tmp_path / "a.wav", pipeline_dir=tmp_path / "missing")
    assert out.turns is None and out.reason


def test_detect_speech_file_wav_and_video_without_audio(tmp_path):
    from kling.io.encode import write_video, write_wav

    x, _ = speech_like(3.0, pauses=((1.0, 2.0),), seed=2)
    wav = tmp_path / "s.wav"
    write_wav(wav, x)
    r = speech.detect_speech_file(wav, n_frames=75)
    assert r.reason is None and len(r.segments) == 2 and r.frame_speech.shape == (75,)
    mute = write_video(tmp_path / "mute.mp4", np.zeros((10, 32, 32, 3), np.uint8), fps=25)
    r = speech.detect_speech_file(mute, n_frames=10)
    assert r.reason == "no_audio" and r.segments == [] and r.speech_ratio == 0.0


def test_rms_envelope_blocks_match_direct_computation():
    """The block-wise envelope (bounded memory on long audio) equals a direct per-frame RMS."""
    from kling.perception.speech import mean_square, rms_envelope

    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.1, 16000 * 70 + 123).astype(np.float32)  # 70 s: spans several blocks
    env = rms_envelope(x)
    direct = np.array([np.sqrt(np.mean(x[i * 640:(i + 1) * 640].astype(np.float64) ** 2)) for i in range(len(env))])
    assert len(env) == int(np.ceil(len(x) / 640))
    np.testing.assert_allclose(env, direct, rtol=1e-5)
    assert mean_square(x, block=1000) == pytest.approx(float(np.mean(x.astype(np.float64) ** 2)), rel=1e-12)


# --- blockwise (streaming) audio analysis equals the whole-track computation --------------------------------

def _reference_probs(x: np.ndarray) -> np.ndarray:
    """silero's own protocol over the whole track, written out: state reset, one call per 512-sample window,
    the last window zero-padded."""
    import torch

    model = speech.load_vad()
    model.reset_states()
    audio = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    out = []
    with torch.inference_mode():
        for i in range(0, len(audio), speech.VAD_WINDOW):
            chunk = audio[i:i + speech.VAD_WINDOW]
            chunk = torch.nn.functional.pad(chunk, (0, speech.VAD_WINDOW - len(chunk)))
            out.append(float(model(chunk, SR).item()))
    return np.asarray(out, np.float32)


def _cut(x: np.ndarray, sizes) -> list[np.ndarray]:
    """``x`` cut into consecutive pieces of the given sizes, repeated to the end."""
    pieces, i, k = [], 0, 0
    while i < len(x):
        pieces.append(x[i:i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
    return pieces


def test_vad_stream_equals_the_whole_track_run():
    """The recurrent state is carried across blocks and partial windows wait for the next block: the
    probabilities of any cut are those of one pass over the whole track, bit for bit."""
    x, _ = speech_like(3.0, pauses=((1.0, 1.6),), seed=4)
    x = x[:len(x) - 77]  # not a whole number of windows: the last one is padded
    ref = _reference_probs(x)
    assert len(ref) == int(np.ceil(len(x) / speech.VAD_WINDOW)) and ref.max() > 0.5 > ref.min()
    assert speech.speech_probabilities(x).tobytes() == ref.tobytes()
    for sizes in ([1000], [513, 7, 2048, 1], [16000], [len(x)]):
        vad = speech.VadStream()
        for piece in _cut(x, sizes):
            vad.push(piece)
        assert vad.finish().tobytes() == ref.tobytes(), sizes


def test_vad_stream_refuses_to_continue_after_another_reset_the_model():
    first = speech.VadStream()
    first.push(np.zeros(600, np.float32))
    speech.VadStream()  # resets the shared model's state
    with pytest.raises(RuntimeError, match="another VadStream"):
        first.push(np.zeros(600, np.float32))


def _reference_envelope(x: np.ndarray, fps: float, n: int) -> np.ndarray:
    """The whole-track envelope as first written: float64 prefix sums restarted every 1500 frames."""
    hop = SR / fps
    edges = np.round(np.arange(n + 1) * hop).astype(np.int64)
    a, b = np.clip(edges[:-1], 0, len(x)), np.clip(edges[1:], 0, len(x))
    env = np.zeros(n, np.float32)
    for f0 in range(0, n, 1500):
        f1 = min(n, f0 + 1500)
        lo, hi = a[f0], b[f1 - 1]
        sq = np.concatenate([[0.0], np.cumsum(np.square(x[lo:hi], dtype=np.float64))])
        aa, bb = a[f0:f1] - lo, b[f0:f1] - lo
        ok = bb > aa
        env[f0:f1][ok] = np.sqrt((sq[bb[ok]] - sq[aa[ok]]) / (bb - aa)[ok])
    return env


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97])
def test_envelope_stream_equals_the_whole_track_computation(fps):
    """Over envelope-block edges (1500 frames), with a partial last frame, for any cut and any n_frames. Loud
    audio then quiet audio: a running sum carried over the block edge would show in the quiet frames' RMS."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.5, int(SR * 61.3) + 11).astype(np.float32)
    x[SR * 59:] *= 1e-4
    default_n = int(np.ceil(len(x) / (SR / fps) - 1e-9))
    for n in (None, 7, 1500, default_n + 30):
        ref = _reference_envelope(x, fps, default_n if n is None else n)
        assert speech.rms_envelope(x, SR, fps, n).tobytes() == ref.tobytes(), n
        for sizes in ([160000], [12345, 640, 1]):
            env = speech.EnvelopeStream(SR, fps)
            for piece in _cut(x, sizes):
                env.push(piece)
            assert env.finish(n).tobytes() == ref.tobytes(), (n, sizes)


def test_square_sum_equals_mean_square():
    x = np.random.default_rng(6).normal(0, 0.3, 5 * (1 << 16) + 4321).astype(np.float32)  # 5 blocks and a part
    level = speech.SquareSum()
    for piece in _cut(x, [100000, 3]):
        level.push(piece)
    assert level.mean() == speech.mean_square(x) and level.n == len(x)


def test_scan_gives_detect_speech_results_and_binding():
    x, _ = speech_like(4.0, pauses=((2.0, 2.4),), seed=1)
    whole = speech.detect_speech(x, n_frames=90)
    scan = speech.scan_audio(_cut(x, [16000, 999]))
    streamed = speech.speech_from_scan(scan, n_frames=90)
    assert streamed.segments == whole.segments and len(whole.segments) == 2
    assert streamed.frame_prob.tobytes() == whole.frame_prob.tobytes()
    assert np.array_equal(streamed.frame_speech, whole.frame_speech)
    assert (streamed.speech_ratio, streamed.duration_s, streamed.reason) == (whole.speech_ratio, whole.duration_s, None)
    assert scan.envelope.tobytes() == speech.rms_envelope(x).tobytes()
    frames = np.arange(len(scan.envelope))
    ft = _tracks(frames, 1, 0.4 * scan.envelope / scan.envelope.max())
    segs = [(0.0, 2.0), (2.4, 4.0)]
    pd.testing.assert_frame_equal(speech.bind_speakers(segs, ft, envelope=scan.envelope),
                                  speech.bind_speakers(segs, ft, x))
    silent = speech.speech_from_scan(speech.scan_audio([np.zeros(SR, np.float32)]), n_frames=25)
    assert silent.reason == "silent" and silent.segments == [] and not silent.frame_speech.any()
