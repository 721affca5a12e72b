"""The weights registry: listing, offline fetch, verification of hand-placed files, pinning."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from kling import weights as reg
from kling.cli import _register_all, app
from kling.paths import weights_dir

_register_all()
runner = CliRunner()


def test_registry_names_every_standard_file():
    assert {"syncnet_v2", "arcface_w600k_r50", "scrfd_10g", "inception_pt_fid", "i3d_kinetics400"} <= set(reg.REGISTRY)
    for w in reg.REGISTRY.values():
        assert w.url.startswith("http") and w.filename and w.format
        assert w.fetch_command == f"kling weights fetch {w.name}"


def test_missing_file_is_unavailable_with_reason_and_fetch_command():
    with pytest.raises(reg.WeightsUnavailable) as err:
        reg.resolve("syncnet_v2")
    assert "missing" in err.value.reason and err.value.fetch_command == "kling weights fetch syncnet_v2"


def test_offline_fetch_fails_with_clear_message(monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    result = runner.invoke(app, ["weights", "fetch", "syncnet_v2"])
    assert result.exit_code == 1
    assert "download it by hand" in result.output.replace("\n", " ")
    assert not (weights_dir() / "syncnet_v2.model").exists()


def test_hand_placed_file_is_pinned_then_checked():
    weights_dir().mkdir(parents=True)
    target = weights_dir() / "syncnet_v2.model"
    target.write_bytes(b"official bytes")
    first = reg.verify("syncnet_v2")
    assert first.ok and "pinned" in first.detail
    assert json.loads((weights_dir() / reg.LOCK_NAME).read_text())["syncnet_v2"] == hashlib.sha256(b"official bytes").hexdigest()
    assert reg.resolve("syncnet_v2") == target
    target.write_bytes(b"tampered")
    second = reg.verify("syncnet_v2")
    assert not second.ok and "pinned" in second.detail
    with pytest.raises(reg.WeightsUnavailable):
        reg.resolve("syncnet_v2")


def test_hash_prefix_in_file_name_is_checked():
    weights_dir().mkdir(parents=True)
    (weights_dir() / reg.get_weight("inception_pt_fid").filename).write_bytes(b"not the inception weights")
    v = reg.verify("inception_pt_fid")
    assert v.present and not v.ok and "6726825d" in v.detail


def test_list_shows_presence(monkeypatch):
    from rich.console import Console

    # an 80-column terminal: the long file names and sources fold, whether a file is present stays in view
    monkeypatch.setattr("kling.cli.weights.console", Console(width=80))
    weights_dir().mkdir(parents=True)
    (weights_dir() / "w600k_r50.onnx").write_bytes(b"x")
    out = runner.invoke(app, ["weights", "list"]).output
    line = next(line for line in out.splitlines() if "arcface_w600k_r50" in line)
    assert "yes" in line
    assert "no" in next(line for line in out.splitlines() if "syncnet_v2" in line)


def test_explicit_path_is_used_as_given(tmp_path):
    f = tmp_path / "mine.model"
    f.write_bytes(b"abc")
    assert reg.resolve("syncnet_v2", path=f) == f
    with pytest.raises(reg.WeightsUnavailable):
        reg.resolve("syncnet_v2", path=tmp_path / "absent.model")
