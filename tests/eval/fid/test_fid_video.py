"""FID from videos' sampled frames, and the single decode: FID features, FVD clips and the temporal
statistics of one video come from ONE pass of the decoder, and a cached video is not decoded at all."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kling.io.decode as decode_mod
from eval.fid.cache import FeatureCache
from eval.fid.features import load_extractor
from eval.fid.fid import compute_fid, video_features
from eval.fid.sources import FIDFrameConsumer
from tests.support.fid import write_inception_weights
from kling.io.frames import FrameCounter, decode_once
from eval.fvd.fvd import FVDClipConsumer, I3DExtractor
from eval.temporal.framestats import FrameStatsConsumer
from kling.io.encode import write_video


@pytest.fixture(scope="module")
def ext(tmp_path_factory):
    w = write_inception_weights(tmp_path_factory.mktemp("w") / "pt_inception-2015-12-05-6726825d.pth", seed=2)
    return load_extractor(w, batch_size=8)


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = decode_mod.iter_frames

    def counting(path, *a, **k):
        calls.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(decode_mod, "iter_frames", counting)
    return calls


def _video(path, n=20, seed=0, size=48):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size, size, 3)).astype(np.int16)
    frames = [np.clip(np.roll(base, t, axis=1) + rng.integers(-5, 6, base.shape), 0, 255).astype(np.uint8)
              for t in range(n)]
    return write_video(path, np.stack(frames), fps=25)


class _Probe(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0], 400) + x.mean()


def test_one_decode_feeds_every_metric(tmp_path, ext, count_decodes):
    v = _video(tmp_path / "a.mp4", n=20)
    probe = I3DExtractor(_Probe(), sha256="probe")  # clip assembly only; the real I3D is tested elsewhere
    cache = FeatureCache(tmp_path / "cache")
    out = decode_once(v, {"fid": FIDFrameConsumer(v, ext, cache, stride=5), "fvd": FVDClipConsumer(v, probe, cache),
                          "stats": FrameStatsConsumer(window_s=1.0), "n": FrameCounter()})
    assert count_decodes == [str(v)]
    assert out["n"] == 20 and out["fid"].index.tolist() == [0, 5, 10, 15] and out["fid"].features.shape == (4, 2048)
    assert out["fvd"].index.tolist() == [0] and len(out["stats"].sharpness) == 20
    # everything cached: a second pass over the same content decodes nothing
    again = decode_once(v, {"fid": FIDFrameConsumer(v, ext, cache, stride=5), "fvd": FVDClipConsumer(v, probe, cache)})
    assert count_decodes == [str(v)]
    assert np.array_equal(again["fid"].features, out["fid"].features) and again["fid"].n_frames == 20


def test_fid_over_video_folders(tmp_path, ext, count_decodes):
    (tmp_path / "ref").mkdir()
    (tmp_path / "gen").mkdir()
    for i in range(2):
        _video(tmp_path / "ref" / f"{i}.mp4", n=15, seed=i)
        _video(tmp_path / "gen" / f"{i}.mp4", n=15, seed=10 + i)
    (tmp_path / "gen" / "broken.mp4").write_bytes(b"not a video")
    cache = FeatureCache(tmp_path / "cache")
    res = compute_fid(tmp_path / "ref", tmp_path / "gen", cache=cache, extractor=ext)
    assert res.ok and res.n_ref == 6 and res.n_gen == 6 and res.value > 0
    assert [s["path"].endswith("broken.mp4") for s in res.skipped] == [True]
    n = len(count_decodes)
    feats, _ = video_features(sorted((tmp_path / "ref").glob("*.mp4")), ext, cache)
    assert len(count_decodes) == n  # reference already cached
    assert all(f.n_frames == 15 for f in feats.values())
