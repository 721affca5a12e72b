"""FVD parity with common_metrics_on_video_quality's ``videogpt`` method (its code run as it is, in a child
process with ``$KLING_ORACLE_PATH`` on PYTHONPATH: the directory holding its ``fvd`` package, and einops).
Skips with the reason when it is not configured. Setup commands: eval/fid/PARITY.md.

The reference gets the frames our decoder produced (as its float [0, 1] BTCHW input, the layout its
``calculate_fvd`` takes); I3D runs at 224x224, about 8 s per 16-frame clip on 2 CPU cores, so the fast test
compares one 10-frame clip and the full FVD figure is the slow test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from eval.fid.frechet import frechet_distance_features
from kling.io.frames import decode_once
from eval.fvd.fvd import FVDClipConsumer, compute_fvd, load_extractor
from tests.support.fvd import write_i3d_weights
from kling.io.decode import read_frames
from kling.io.encode import write_video

ORACLE_ENV = "KLING_ORACLE_PATH"

ORACLE = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import torch
    from fvd.videogpt.fvd import frechet_distance, get_fvd_logits
    from fvd.videogpt.pytorch_i3d import InceptionI3d

    args = json.loads(sys.argv[1])
    # what load_i3d_pretrained does, with the file under test instead of its download location
    i3d = InceptionI3d(400, in_channels=3).eval()
    i3d.load_state_dict(torch.load(args["weights"], map_location="cpu"))
    feats = {}
    for side in ("ref", "gen"):
        if side not in args:
            continue
        x = torch.from_numpy(np.load(args[side])).float() / 255.0       # (B, T, H, W, C) -> [0, 1]
        x = x.permute(0, 1, 4, 2, 3).permute(0, 2, 1, 3, 4)              # BTCHW, then calculate_fvd's trans -> BCTHW
        feats[side] = get_fvd_logits(x, i3d=i3d, device=torch.device("cpu"))
        np.save(args["out"] + f"/{side}.npy", feats[side].numpy())
    out = {}
    if len(feats) == 2:
        out["fvd_float32"] = frechet_distance(feats["ref"].clone(), feats["gen"].clone())
        out["fvd_float64"] = frechet_distance(feats["ref"].double(), feats["gen"].double())
    print(json.dumps(out))
''')


def run_oracle(tmp: Path, weights: Path, **videos: np.ndarray) -> dict:
    paths = os.environ.get(ORACLE_ENV)
    if not paths:
        pytest.skip(f"FVD oracle not configured (set {ORACLE_ENV}; see eval/fid/PARITY.md)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([paths, os.environ.get("PYTHONPATH", "")]))
    probe = subprocess.run([sys.executable, "-c", "import fvd.videogpt.fvd"], env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"fvd.videogpt not importable from {ORACLE_ENV}={paths}: {probe.stderr.strip()[-200:]}")
    out = tmp / "oracle"
    out.mkdir()
    args = {"weights": str(weights), "out": str(out)}
    for side, arr in videos.items():
        np.save(tmp / f"{side}_in.npy", arr)
        args[side] = str(tmp / f"{side}_in.npy")
    proc = subprocess.run([sys.executable, "-c", ORACLE, json.dumps(args)], env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for side in videos:
        res[side] = np.load(out / f"{side}.npy")
    return res


def moving_video(path: Path, n: int, seed: int, h: int = 48, w: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    cx, cy = rng.uniform(10, w - 10), rng.uniform(10, h - 10)
    col = rng.integers(60, 255, 3)
    for t in range(n):
        img = np.full((h, w, 3), 30, np.uint8)
        m = (xx - cx - 1.5 * t) ** 2 + (yy - cy) ** 2 < 64
        img[m] = col
        frames.append(img)
    return write_video(path, np.stack(frames), fps=25)


def test_i3d_logits_match_reference(tmp_path):
    weights = write_i3d_weights(tmp_path / "i3d_pretrained_400.pt", seed=2)
    video = moving_video(tmp_path / "v.mp4", 10, seed=0)
    frames = read_frames(video)
    assert len(frames) == 10
    oracle = run_oracle(tmp_path, weights, ref=frames[None])
    ext = load_extractor(weights)
    ours = decode_once(video, {"fvd": FVDClipConsumer(video, ext)})["fvd"]
    diff = np.abs(ours.features - oracle["ref"]).max()
    print(f"I3D logits max |diff| {diff:.3g} (logit scale {np.abs(oracle['ref']).max():.3g})")
    assert ours.features.shape == (1, 400)
    assert diff < 1e-4 * max(1.0, np.abs(oracle["ref"]).max())


@pytest.mark.slow
def test_fvd_matches_reference(tmp_path):
    weights = write_i3d_weights(tmp_path / "i3d_pretrained_400.pt", seed=4)
    ref_dir, gen_dir = tmp_path / "ref", tmp_path / "gen"
    ref_dir.mkdir()
    gen_dir.mkdir()
    for i in range(2):
        moving_video(ref_dir / f"{i}.mp4", 16, seed=i)
        moving_video(gen_dir / f"{i}.mp4", 16, seed=10 + i)
    stack = lambda d: np.stack([read_frames(p) for p in sorted(d.glob("*.mp4"))])  # noqa: E731
    oracle = run_oracle(tmp_path, weights, ref=stack(ref_dir), gen=stack(gen_dir))
    ours = compute_fvd(ref_dir, gen_dir, weights=weights, cache=False)
    ours_on_ref_logits = frechet_distance_features(oracle["ref"], oracle["gen"])
    print(f"FVD reference float32 {oracle['fvd_float32']:.6f}, reference float64 {oracle['fvd_float64']:.6f}, "
          f"ours {ours.value:.6f}, ours on reference logits {ours_on_ref_logits:.6f}")
    assert abs(ours.value - oracle["fvd_float64"]) < 1e-3
    assert abs(ours.value - oracle["fvd_float32"]) < 1e-3 * max(1.0, abs(oracle["fvd_float32"]))
