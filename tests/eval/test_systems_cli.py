"""`kling benchmark ...` and `kling system ...` commands on small clips the test makes."""

from __future__ import annotations

import numpy as np
import typer
import yaml
from typer.testing import CliRunner

from kling.cli.leaderboard import register
from kling.io.encode import write_video


def _app():
    app = typer.Typer()
    register(app)
    return app


def _clip(path, seconds=1.2, colour=100):
    t = np.arange(int(seconds * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    frames = np.full((int(seconds * 25), 32, 32, 3), colour, np.uint8)
    return write_video(path, frames, audio=audio, preset="ultrafast")


def test_benchmark_and_system_commands(tmp_path):
    cli, app = CliRunner(), _app()
    _clip(tmp_path / "clips" / "ann_000.mp4", colour=60)
    _clip(tmp_path / "clips" / "bob_000.mp4", colour=180)
    r = cli.invoke(app, ["benchmark", "from-clips", str(tmp_path / "clips"), str(tmp_path / "bench")])
    assert r.exit_code == 0, r.output
    spec = tmp_path / "bench" / "benchmark.yaml"
    r = cli.invoke(app, ["benchmark", "validate", str(spec), "--media"])
    assert r.exit_code == 0 and "2 cases, ok" in r.output, r.output
    r = cli.invoke(app, ["system", "controls", str(spec), str(tmp_path / "controls")])
    assert r.exit_code == 0 and "8 written" in r.output, r.output
    r = cli.invoke(app, ["system", "check", str(tmp_path / "controls" / "control.ground_truth"), "--benchmark", str(spec)])
    assert r.exit_code == 0 and "2 ok" in r.output, r.output
    _clip(tmp_path / "ext" / "take1.mp4")
    (tmp_path / "map.csv").write_text("file,case_id\ntake1.mp4,ann_000\n")
    r = cli.invoke(app, ["system", "import", str(tmp_path / "ext"), str(tmp_path / "sys"), "--name", "heygen",
                         "--version", "1", "--source", "export", "--mapping", str(tmp_path / "map.csv"), "--benchmark", str(spec)])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["system", "check", str(tmp_path / "sys"), "--benchmark", str(spec)])
    assert r.exit_code == 1 and "bob_000: missing" in r.output
    bad = yaml.safe_load(spec.read_text())
    bad["cases"][1]["duration_class"] = "long"
    spec.write_text(yaml.safe_dump(bad))
    r = cli.invoke(app, ["benchmark", "validate", str(spec)])
    assert r.exit_code == 1 and "case 'bob_000' field 'duration_class'" in r.output
    r = cli.invoke(app, ["benchmark", "from-clips", str(tmp_path / "nothing"), str(tmp_path / "b2")])
    assert r.exit_code == 1 and "not a folder" in r.output
