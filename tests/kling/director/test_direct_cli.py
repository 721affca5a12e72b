"""`kling direct`: prints the storyline; --json gives one object, a failure as {status, reason}."""

from __future__ import annotations

import json
import socket

import typer
from typer.testing import CliRunner

from kling.cli import direct as direct_cli


def _app():
    app = typer.Typer()
    direct_cli.register(app)
    app.command("noop")(lambda: None)  # two commands: typer keeps `direct` as a subcommand
    return app


def test_direct_json_and_out(director_inputs, tmp_path):
    f = director_inputs
    out = tmp_path / "story.json"
    res = CliRunner().invoke(_app(), ["direct", "--image", str(f["ava"]), "--audio", str(f["loud"]),
                                      "--instruction", "She nods.", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["status"] == "ok" and got["storyline"]["shots"][0]["head_motion"] == "nod"
    assert json.loads(out.read_text())["storyline"] == got["storyline"] and got["dialogue"]
    text = CliRunner().invoke(_app(), ["direct", "--image", str(f["ava"]), "--audio", str(f["loud"])])
    assert text.exit_code == 0 and "shot 0:" in text.output and "negative:" in text.output


def test_direct_failures_are_json(director_inputs, tmp_path):
    f = director_inputs
    out = tmp_path / "story.json"
    res = CliRunner().invoke(_app(), ["direct", "--image", str(f["ava"]), "--audio", str(tmp_path / "no.wav"),
                                      "--json", "--out", str(out)])
    assert res.exit_code == 1
    got = json.loads(res.output)
    assert got["status"] == "failed" and "audio file not found" in got["reason"]
    assert not out.exists()  # nothing half-written
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = CliRunner().invoke(_app(), ["direct", "--image", str(f["ava"]), "--audio", str(f["loud"]), "--json",
                                      "--backend", "openai", "--llm-url", f"http://127.0.0.1:{port}/v1",
                                      "--model", "m"])
    got = json.loads(res.output)
    assert res.exit_code == 1 and got["status"] == "failed" and "unreachable" in got["reason"]
    res = CliRunner().invoke(_app(), ["direct", "--image", str(f["ava"]), "--audio", str(f["loud"]), "--json",
                                      "--backend", "gpt"])
    assert json.loads(res.output)["status"] == "failed" and "unknown llm backend" in json.loads(res.output)["reason"]
