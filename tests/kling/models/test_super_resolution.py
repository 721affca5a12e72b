"""The cascade's super-resolution network: bicubic at initialisation, chunked = one pass, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kling.models.registry import get_super_resolution_size
from kling.models.super_resolution import VideoSuperResolution, load_super_resolution, save_super_resolution, upscale_frames
from kling.models.vae import to_frames, to_video

torch.set_num_threads(1)
SIZE = get_super_resolution_size("tiny")


def _net(seed: int = 0) -> VideoSuperResolution:
    torch.manual_seed(seed)
    net = VideoSuperResolution(SIZE)
    torch.nn.init.normal_(net.tail.weight, std=0.05)  # as if trained: the detail branch is not zero
    return net.eval()


def _clip(n: int = 23, side: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, side, side, 3)).astype(np.uint8)


def test_at_initialisation_it_is_bicubic_upsampling():
    video = to_video(_clip(5))
    with torch.no_grad():
        out = VideoSuperResolution(SIZE)(video)
    frames = video[0].transpose(0, 1)  # (T, 3, h, w)
    expected = F.interpolate(frames, scale_factor=2, mode="bicubic", align_corners=False).transpose(0, 1)[None]
    assert out.shape == (1, 3, 5, 32, 32) and torch.equal(out, expected)


def test_a_frame_depends_on_halo_frames_each_side_and_chunks_give_one_pass():
    net, clip = _net(), _clip()
    with torch.no_grad():
        whole = net(to_video(clip))
        moved = clip.copy()
        moved[10] = 255 - moved[10]
        changed = (net(to_video(moved)) - whole).abs().flatten(3).amax(dim=(0, 1, 3)) > 1e-6
    assert changed.nonzero().flatten().tolist() == list(range(10 - net.halo, 10 + net.halo + 1))
    for chunk in (1, 4, 16):
        out = np.zeros((len(clip), 32, 32, 3), np.uint8)
        upscale_frames(net, clip, out, chunk=chunk)
        assert np.abs(out.astype(int) - to_frames(whole)).max() <= 1  # float sums in another order at most


def test_checkpoint_round_trip_from_the_checkpoint_or_its_run_folder(tmp_path):
    import json

    net, clip = _net(), to_video(_clip(5))
    folder = save_super_resolution(tmp_path / "run" / "step-000010", net, {"step": 10})
    (tmp_path / "run" / "latest.json").write_text(json.dumps({"checkpoint": str(folder)}))
    for where in (folder, tmp_path / "run"):
        loaded = load_super_resolution(where)
        assert loaded.folder == folder and len(loaded.sha256) == 64
        with torch.no_grad():
            assert torch.equal(loaded.model(clip), net(clip))
    with pytest.raises(FileNotFoundError, match="train it first"):
        load_super_resolution(tmp_path / "nothing")
