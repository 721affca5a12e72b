"""`kling eval fid|fvd|drift`: JSON output fields, exit codes, unavailable reasons."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from kling.cli import eval_drift, eval_fid, eval_fvd
from kling.io.encode import write_video


@pytest.fixture(scope="module")
def app():
    app, sub = typer.Typer(), typer.Typer()
    app.add_typer(sub, name="eval")
    for m in (eval_fid, eval_fvd, eval_drift):
        m.register(sub)
    return app


def test_fid_cli_json_and_unavailable(tmp_path, app):
    from PIL import Image

    from tests.support.fid import write_inception_weights

    for side in ("ref", "gen"):
        (tmp_path / side).mkdir()
        for i in range(2):
            img = np.full((40, 40, 3), 60 * i + (side == "gen") * 30, np.uint8)
            img[10:20, 5:35] = 200
            Image.fromarray(img).save(tmp_path / side / f"{i}.png")
    r = CliRunner().invoke(app, ["eval", "fid", str(tmp_path / "ref"), str(tmp_path / "gen")])
    assert r.exit_code == 2 and "kling weights fetch inception_pt_fid" in r.output
    w = write_inception_weights(tmp_path / "w.pth")
    r = CliRunner().invoke(app, ["eval", "fid", str(tmp_path / "ref"), str(tmp_path / "gen"), "--weights", str(w),
                                 "--resize", "clean", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["fid"] > 0 and d["n"] == 2 and d["backbone"] == "pt_inception-2015-12-05"
    assert len(d["backbone_sha256"]) == 64 and d["protocol_version"] == "fid-v1/clean/s5"
    r = CliRunner().invoke(app, ["eval", "fid", str(tmp_path / "ref"), str(tmp_path / "gen"), "--resize", "nearest"])
    assert r.exit_code != 0


def test_fvd_cli_unavailable_json(tmp_path, app):
    (tmp_path / "a").mkdir()
    r = CliRunner().invoke(app, ["eval", "fvd", str(tmp_path / "a"), str(tmp_path / "a"), "--json"])
    assert r.exit_code == 2
    d = json.loads(r.output)
    assert d["fvd"] is None and d["status"] == "unavailable" and d["protocol_version"] == "fvd-v1/l16/s16/mall"


def test_drift_cli(tmp_path, app):
    frames = np.zeros((60, 32, 32, 3), np.uint8)
    frames[30:] = 200  # hard cut at frame 30
    v = write_video(tmp_path / "v.mp4", frames, fps=25)
    r = CliRunner().invoke(app, ["eval", "drift", str(v), "--window", "1", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["transitions"]["worst"]["frame"] == 30 and d["protocol_version"] == "drift-v1/w1"
    r = CliRunner().invoke(app, ["eval", "drift", str(v), "--window", "1"])
    assert r.exit_code == 0 and "worst frame 30" in r.output
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"junk")
    assert CliRunner().invoke(app, ["eval", "drift", str(bad)]).exit_code == 1
