"""FID parity with pytorch-fid (the reference code run as it is, on the same images and the same weights file).

The reference is not a project dependency (it imports torchvision). It runs in a child process whose
PYTHONPATH is ``$KLING_ORACLE_PATH`` (directories holding ``pytorch_fid`` and ``torchvision``); without it,
the test skips with the reason. Where torchvision's compiled ops cannot load (CPU torch with the CUDA
wheel), the child declares the two op schemas its meta registrations need before importing it; nothing
of the reference is patched. Setup commands: see eval/fid/PARITY.md.
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

from eval.fid.features import list_images, load_extractor
from eval.fid.fid import compute_fid, fid_of_features, protocol
from eval.fid.frechet import frechet_distance_features
from eval.fid.sources import image_features
from tests.support.fid import write_inception_weights

ORACLE_ENV = "KLING_ORACLE_PATH"

ORACLE = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import torch

    def import_torchvision():
        try:
            import torchvision  # noqa: F401
        except RuntimeError as exc:  # CUDA wheel on CPU torch: C++ ops missing, meta registration fails
            if "torchvision::" not in str(exc):
                raise
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[name]
            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            globals()["_keep_lib"] = lib
            import torchvision  # noqa: F401

    import_torchvision()
    import pytorch_fid.inception as pi
    from pytorch_fid import fid_score

    args = json.loads(sys.argv[1])
    # the reference downloads its weights by URL; hand it the file under test instead
    pi.load_state_dict_from_url = lambda url, progress=True: torch.load(args["weights"], map_location="cpu")
    model = pi.InceptionV3([pi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    out = {}
    for side in ("ref", "gen"):
        files = sorted(str(p) for p in __import__("pathlib").Path(args[side]).iterdir())
        act = fid_score.get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=0)
        np.save(args["out"] + f"/{side}.npy", act)
    if args.get("fid"):
        ref = np.load(args["out"] + "/ref.npy"); gen = np.load(args["out"] + "/gen.npy")
        # exactly calculate_activation_statistics on the activations computed above
        mu1, sg1 = np.mean(ref, axis=0), np.cov(ref, rowvar=False)
        mu2, sg2 = np.mean(gen, axis=0), np.cov(gen, rowvar=False)
        out["fid"] = float(fid_score.calculate_frechet_distance(mu1, sg1, mu2, sg2))
    print(json.dumps(out))
''')


def run_oracle(tmp: Path, weights: Path, ref: Path, gen: Path, with_fid: bool) -> dict:
    paths = os.environ.get(ORACLE_ENV)
    if not paths:
        pytest.skip(f"pytorch-fid oracle not configured (set {ORACLE_ENV}; see eval/fid/PARITY.md)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([paths, os.environ.get("PYTHONPATH", "")]))
    probe = subprocess.run([sys.executable, "-c", "import pytorch_fid"], env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"pytorch_fid not importable from {ORACLE_ENV}={paths}: {probe.stderr.strip()[-200:]}")
    out = tmp / "oracle"
    out.mkdir()
    args = json.dumps({"weights": str(weights), "ref": str(ref), "gen": str(gen), "out": str(out), "fid": with_fid})
    proc = subprocess.run([sys.executable, "-c", ORACLE, args], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["ref"], res["gen"] = np.load(out / "ref.npy"), np.load(out / "gen.npy")
    return res


def make_folders(tmp: Path, n: int = 5, size: int = 64) -> tuple[Path, Path]:
    from PIL import Image

    rng = np.random.default_rng(7)
    ref, gen = tmp / "ref", tmp / "gen"
    ref.mkdir()
    gen.mkdir()
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):  # smooth structured images (gradients, blobs), plus noise on the generated side
        base = np.stack([xx * (i + 1) % 1.0, yy, (xx + yy) / 2], axis=2) * 255
        Image.fromarray(base.astype(np.uint8)).save(ref / f"{i:02d}.png")
        noisy = np.clip(base + rng.normal(0, 25, base.shape), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(gen / f"{i:02d}.png")
    return ref, gen


def test_features_match_pytorch_fid(tmp_path):
    weights = write_inception_weights(tmp_path / "pt_inception-2015-12-05-6726825d.pth", seed=3)
    ref, gen = make_folders(tmp_path)
    oracle = run_oracle(tmp_path, weights, ref, gen, with_fid=False)
    ext = load_extractor(weights)
    f_ref, _ = image_features(list_images(ref), ext)
    f_gen, _ = image_features(list_images(gen), ext)
    ours = fid_of_features(f_ref, f_gen, ext, protocol())
    diff = max(np.abs(f_ref - oracle["ref"]).max(), np.abs(f_gen - oracle["gen"]).max())
    scale = np.abs(oracle["ref"]).max()
    print(f"max |feature diff| {diff:.3g} (feature scale {scale:.3g})")
    assert diff < 1e-4 * max(1.0, scale)
    # the same features through pytorch-fid's own statistics and distance formula (scipy sqrtm is minutes at
    # 2048-d on 2 cores, so the full-figure comparison is the slow test below)
    fid_on_oracle_feats = frechet_distance_features(oracle["ref"], oracle["gen"])
    print(f"FID ours {ours.value:.6f} vs ours-on-reference-features {fid_on_oracle_feats:.6f}")
    assert abs(ours.value - fid_on_oracle_feats) < 1e-3


@pytest.mark.slow
def test_fid_matches_pytorch_fid_end_to_end(tmp_path):
    weights = write_inception_weights(tmp_path / "pt_inception-2015-12-05-6726825d.pth", seed=5)
    ref, gen = make_folders(tmp_path, n=6)
    oracle = run_oracle(tmp_path, weights, ref, gen, with_fid=True)
    ours = compute_fid(ref, gen, weights=weights, cache=False)
    print(f"FID pytorch-fid {oracle['fid']:.6f} ours {ours.value:.6f} diff {abs(oracle['fid'] - ours.value):.3g}")
    assert abs(oracle["fid"] - ours.value) < 1e-3
