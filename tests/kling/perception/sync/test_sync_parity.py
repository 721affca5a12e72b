"""Parity with the reference SyncNetInstance.evaluate (joonson/syncnet_python) on the same frames and weights.

Oracle: the PyPI fork syncnet-python 0.2.3, installed without dependencies outside the repo
(``pip install --no-deps --target DIR syncnet-python==0.2.3``; point KLING_SYNCNET_ORACLE at DIR, or
have it importable). Its SyncNetModel.S is the upstream architecture (formatting changes only) and its
evaluate() is upstream's line for line except: the network and a ``device`` argument are passed in
instead of ``.cuda()``, frames and audio.wav are read from ``opt.tmp_dir`` (no ffmpeg call), and it
returns (offset, conf, minval) instead of the per-frame distances. We use its own S, its own
loadParameters and its own evaluate; only its JPEG file reading is replaced by the same frames handed
over losslessly (glob/imread), and its calc_pdist is wrapped to record the distances it computes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from kling.perception.sync.crop import crop_face
from kling.perception.sync.engine import FusedSyncNet, LipStream
from kling.perception.sync.model import load_syncnet
from kling.perception.sync.pipeline import SyncBackbone, SyncEvaluator
from tests.support.sync import draw_face_frames, synthetic_speech, write_official_format_weights

ORACLE_VERSION = "0.2.3"


def _oracle_dir() -> Path | None:
    env = os.environ.get("KLING_SYNCNET_ORACLE")
    roots = [Path(env)] if env else []
    spec = importlib.util.find_spec("syncnet_python")  # locate only: its __init__ needs scenedetect
    if spec is not None and spec.submodule_search_locations:
        roots.append(Path(list(spec.submodule_search_locations)[0]).parent)
    for root in roots:
        if (root / "syncnet_python" / "SyncNetInstance.py").is_file():
            return root
    return None


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def oracle():
    root = _oracle_dir()
    if root is None:
        pytest.skip("reference oracle syncnet-python==0.2.3 not installed: pip install --no-deps --target DIR "
                    "syncnet-python==0.2.3 and set KLING_SYNCNET_ORACLE=DIR")
    versions = [p.name for p in root.glob("syncnet_python-*.dist-info")]
    if versions and f"syncnet_python-{ORACLE_VERSION}.dist-info" not in versions:
        pytest.skip(f"oracle at {root} is {versions}, parity was checked against {ORACLE_VERSION} only")
    pkg = root / "syncnet_python"
    return types.SimpleNamespace(model=_load(pkg / "SyncNetModel.py", "_oracle_SyncNetModel"),
                                 instance=_load(pkg / "SyncNetInstance.py", "_oracle_SyncNetInstance"))


def _clip(n_frames: int, seed: int, shift: int = 0):
    audio, env = synthetic_speech(n_frames, seed)
    mouth = np.roll(env, shift)
    return draw_face_frames(mouth, seed), audio


def _run_oracle(oracle, weights: Path, frames_rgb: np.ndarray, audio_i16: np.ndarray, tmp: Path, monkeypatch):
    net = oracle.model.S()
    inst = oracle.instance.SyncNetInstance(net, device="cpu")
    inst.loadParameters(str(weights))
    wavfile.write(tmp / "audio.wav", 16000, audio_i16)  # int16 wav: lossless
    names = [str(tmp / f"{i + 1:06d}.jpg") for i in range(len(frames_rgb))]
    bgr = {n: np.ascontiguousarray(f[:, :, ::-1]) for n, f in zip(names, frames_rgb)}  # what cv2.imread returns
    mod = oracle.instance
    monkeypatch.setattr(mod, "glob", types.SimpleNamespace(glob=lambda pattern: list(names)))
    monkeypatch.setattr(mod, "cv2", types.SimpleNamespace(imread=lambda name: bgr[name].copy()))
    recorded = {}
    real_pdist = mod.calc_pdist

    def calc_pdist(feat1, feat2, vshift=10):
        recorded["dists"] = real_pdist(feat1, feat2, vshift=vshift)
        return recorded["dists"]

    monkeypatch.setattr(mod, "calc_pdist", calc_pdist)
    opt = types.SimpleNamespace(tmp_dir=str(tmp), batch_size=20, vshift=15)
    offset, conf, minval = inst.evaluate(opt)
    mdist = torch.mean(torch.stack(recorded["dists"], 1), 1).numpy()  # the line evaluate() computes
    return offset, conf, minval, mdist


@pytest.mark.parametrize("n_frames,shift,seed", [(40, 0, 3), (31, 2, 5)])
def test_parity_with_reference_evaluate(oracle, tmp_path, monkeypatch, n_frames, shift, seed):
    weights = write_official_format_weights(tmp_path / "syncnet_v2.model", seed=11)
    frames, audio = _clip(n_frames, seed, shift)
    audio_i16 = np.clip(np.rint(audio * 32768), -32768, 32767).astype(np.int16)
    audio_i16 = audio_i16[: len(audio_i16) - 123]  # lengths need not match: the reference's min_length rule

    offset, conf, minval, mdist = _run_oracle(oracle, weights, frames, audio_i16, tmp_path, monkeypatch)

    ev = SyncEvaluator(SyncBackbone("syncnet_v2", "test", FusedSyncNet(load_syncnet(weights))), batch_size=16)
    stream = ev.new_stream()
    for i in range(0, n_frames, 13):  # chunk boundaries that do not line up with windows
        ev.push(stream, frames[i : i + 13])
    ours = ev.score_stream(stream, audio_i16)

    assert ours.status == "ok"
    got = np.array(ours.offset_dists[::-1])  # ours: offset -15 first; reference: index 0 = offset +15
    diff = np.abs(got - mdist).max()
    print(f"parity n={n_frames}: max|dists|={diff:.2e} |sync_c|={abs(ours.sync_c - conf):.2e} |sync_d|={abs(ours.sync_d - minval):.2e}")
    assert diff < 1e-3
    assert abs(ours.sync_d - minval) < 1e-3
    assert abs(ours.sync_c - conf) < 1e-3
    assert ours.n_windows == min(n_frames, len(audio_i16) // 640) - 5
    if not ours.near_tie:
        assert ours.av_offset == int(offset)


def test_crop_matches_padded_frame_formula():
    """crop_face reads only the crop window; it must equal padding the whole frame (the reference's way)."""
    import cv2

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for s, x, y in [(30.0, 80.0, 60.0), (50.5, 5.2, 110.7), (12.3, 150.0, 3.0), (70.0, 80.0, 60.0)]:
        cs = 0.4
        bsi = int(s * (1 + 2 * cs))
        padded = np.pad(frame, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(110, 110))
        my, mx = y + bsi, x + bsi
        face = padded[int(my - s) : int(my + s * (1 + 2 * cs)), int(mx - s * (1 + cs)) : int(mx + s * (1 + cs))]
        np.testing.assert_array_equal(crop_face(frame, s, x, y), cv2.resize(face, (224, 224)))


def test_fused_engine_matches_reference_layers(tmp_path):
    """Folded BN + 2-D convs + strided windows = the official layer stack on copied 5-frame windows."""
    net = load_syncnet(write_official_format_weights(tmp_path / "w.model", seed=2))
    frames = np.random.default_rng(1).integers(0, 255, (13, 224, 224, 3), dtype=np.uint8)
    stream = LipStream(FusedSyncNet(net), batch_size=4)
    stream.push(frames[:6])
    stream.push(frames[6:])
    x = torch.from_numpy(frames[..., ::-1].copy()).float().permute(3, 0, 1, 2)[None]
    with torch.no_grad():
        ref = torch.cat([net.forward_lip(x[:, :, i : i + 5]) for i in range(9)])
        mf = torch.randn(6, 1, 13, 20) * 8
        aud_ref = net.forward_aud(mf)
    assert stream.features().shape == (9, 1024)
    assert torch.allclose(stream.features(), ref, atol=1e-3)
    assert torch.allclose(FusedSyncNet(net).audio(mf), aud_ref, atol=1e-3)


def test_lip_features_do_not_depend_on_chunking(tmp_path):
    """Fixed batches of windows: any split of the same frames into pushes gives bit-identical features, so a
    decode shared with other metrics (other chunk sizes) cannot move a Sync number."""
    net = FusedSyncNet(load_syncnet(write_official_format_weights(tmp_path / "w.model", seed=3)))
    frames = np.random.default_rng(2).integers(0, 255, (23, 224, 224, 3), dtype=np.uint8)
    outs = []
    for splits in ([23], [1, 1, 3, 10, 8], [7, 9, 7], [4, 19]):
        stream = LipStream(net, batch_size=4)
        i = 0
        for n in splits:
            stream.push(frames[i : i + n])
            i += n
        outs.append(stream.features().clone())
    assert outs[0].shape == (19, 1024)
    for o in outs[1:]:
        assert torch.equal(o, outs[0])


def test_medfilt_equals_scipy():
    """The numpy median filter behind box smoothing and framewise confidence = scipy.signal.medfilt (which
    the reference calls), ends included."""
    import warnings

    from scipy import signal

    from kling.perception.sync.crop import medfilt

    rng = np.random.default_rng(4)
    for n in (1, 5, 12, 13, 40):
        x = rng.normal(50, 20, n)
        for k in (9, 13):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # scipy warns that a short series is zero-padded
                ref = signal.medfilt(x, kernel_size=k)
            np.testing.assert_array_equal(medfilt(x, k), ref)
    with pytest.raises(ValueError):
        medfilt(np.zeros(5), 4)
