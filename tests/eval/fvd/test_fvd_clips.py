"""FVD: the I3D state-dict format, the videogpt preprocessing, the clip-sampling protocol (which frames make
each clip), the too-short and unavailable paths, and the cache. Clip assembly is checked with a probe
network that reports which frames it was given (the real I3D is checked against the reference in
test_fvd_parity.py; it costs ~8 s per clip on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.fid.cache import FeatureCache
from kling.io.frames import decode_once
from eval.fvd.fvd import (FVDClipConsumer, I3DExtractor, compute_fvd, fvd_of_features, load_extractor,
                          preprocess_frames, protocol, video_clip_features)
from eval.fvd.i3d import expected_shapes, load_i3d
from tests.support.fvd import write_i3d_weights
from tests.support.fid import random_state_dict
from kling.io.encode import write_video
from kling.weights import WeightsUnavailable


class FrameProbe(torch.nn.Module):
    """(N, 3, T, 224, 224) -> (N, 400): the clip's per-frame mean (in [-1, 1]) in the first T slots."""

    def forward(self, x):
        out = torch.full((x.shape[0], 400), -9.0)
        out[:, : x.shape[2]] = x.mean(dim=(1, 3, 4))
        return out


def probe_extractor():
    return I3DExtractor(FrameProbe(), sha256="probe", batch_size=2)


def counting_video(path, n, h=40, w=56):
    """Frame i is a flat grey of value 4*i: the probe's output tells which frames a clip holds."""
    frames = np.stack([np.full((h, w, 3), 4 * i, np.uint8) for i in range(n)])
    return write_video(path, frames, fps=25, crf=0)


def frame_ids(feats, t):
    return np.round(((feats[:, :t] / 2 + 0.5) * 255) / 4).astype(int)


def test_i3d_state_dict_format(tmp_path):
    shapes = expected_shapes()
    assert shapes["Conv3d_1a_7x7.conv3d.weight"] == (64, 3, 7, 7, 7)
    assert shapes["Mixed_5c.b3b.conv3d.weight"] == (128, 832, 1, 1, 1)
    assert shapes["logits.conv3d.weight"] == (400, 1024, 1, 1, 1) and shapes["logits.conv3d.bias"] == (400,)
    assert len(shapes) == 344 - 57  # the reference's 344 keys less the 57 BN counters
    load_i3d(write_i3d_weights(tmp_path / "a.pt", with_counters=False))
    sd = random_state_dict(shapes)
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "dp.pt")
    with pytest.raises(WeightsUnavailable, match="DataParallel"):
        load_extractor(tmp_path / "dp.pt")


def test_preprocessing_is_videogpt():
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    frames[:, :, :, 0] = 255
    frames[:, :, :, 1] = 51
    x = preprocess_frames(frames)
    assert x.shape == (3, 3, 224, 224)
    assert torch.allclose(x[0], torch.ones(1)) and torch.allclose(x[1], torch.tensor((51 / 255 - 0.5) * 2))
    assert torch.allclose(x[2], -torch.ones(1))
    # portrait: short side (width) to 224, centre crop in height
    assert preprocess_frames(np.zeros((2, 100, 50, 3), np.uint8)).shape == (3, 2, 224, 224)


def test_clip_sampling_protocol(tmp_path):
    v = counting_video(tmp_path / "v.mp4", 40)
    ext = probe_extractor()
    clips = decode_once(v, {"fvd": FVDClipConsumer(v, ext)})["fvd"]
    assert clips.index.tolist() == [0, 16]  # frames 32..39 do not fill a clip
    assert frame_ids(clips.features, 16).tolist() == [list(range(16)), list(range(16, 32))]
    over = decode_once(v, {"fvd": FVDClipConsumer(v, ext, clip_len=16, clip_stride=8)})["fvd"]
    assert over.index.tolist() == [0, 8, 16, 24]
    assert frame_ids(over.features, 16)[3].tolist() == list(range(24, 40))
    one = decode_once(v, {"fvd": FVDClipConsumer(v, ext, max_clips=1)})["fvd"]
    assert one.index.tolist() == [0]
    assert protocol(16, 8, 1)["version"] == "fvd-v1/l16/s8/m1"


def test_short_videos(tmp_path):
    ext = probe_extractor()
    v12 = counting_video(tmp_path / "v12.mp4", 12)
    c = decode_once(v12, {"fvd": FVDClipConsumer(v12, ext)})["fvd"]
    assert c.reason is None and frame_ids(c.features, 12).tolist() == [list(range(12))]
    v8 = counting_video(tmp_path / "v8.mp4", 8)
    feats, skipped = video_clip_features([v8], ext)
    assert len(feats[str(v8)].features) == 0 and skipped[0]["reason"].startswith("too_short")


def test_fvd_set_and_cache(tmp_path):
    ext = probe_extractor()
    (tmp_path / "ref").mkdir()
    (tmp_path / "gen").mkdir()
    for i in range(2):
        counting_video(tmp_path / "ref" / f"{i}.mp4", 32)
        counting_video(tmp_path / "gen" / f"{i}.mp4", 16 + 8 * i)
    cache = FeatureCache(tmp_path / "cache")
    res = compute_fvd(tmp_path / "ref", tmp_path / "gen", extractor=ext, cache=cache)
    assert res.ok and res.n_ref == 4 and res.n_gen == 2 and res.value > 0
    same = compute_fvd(tmp_path / "ref", tmp_path / "ref", extractor=ext, cache=cache)
    assert abs(same.value) < 1e-6 and cache.hits >= 4
    d = res.to_dict()
    assert set(["fvd", "n", "backbone", "backbone_sha256", "protocol_version"]) <= set(d)
    few = fvd_of_features(np.zeros((1, 400)), np.zeros((5, 400)), ext, protocol())
    assert few.status == "unavailable" and "at least 2 clips" in few.reason


def test_unavailable_without_weights(tmp_path):
    (tmp_path / "a").mkdir()
    res = compute_fvd(tmp_path / "a", tmp_path / "a")
    assert res.status == "unavailable" and "kling weights fetch i3d_kinetics400" in res.reason
    assert res.to_rows()[0]["protocol_version"] == "fvd-v1/l16/s16/mall"
