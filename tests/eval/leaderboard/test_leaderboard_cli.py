"""`kling leaderboard` and `kling compare` print the store's table in the terminal."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from eval.leaderboard import controls as C
from eval.leaderboard import store
from eval.leaderboard.synthetic import system_rows
from kling.cli.leaderboard import register

CASES = [f"c{i}" for i in range(6)]


def _app():
    app = typer.Typer()
    register(app)
    return app


def _fill(root, csim_gt=0.85):
    store.write_run(system_rows("ours", {"sync_c": 7.0, "csim": 0.8}, CASES), root)
    store.write_run(system_rows("theirs", {"sync_c": 6.0, "csim": 0.7}, CASES, missing=["c1"]), root)
    store.write_run(system_rows("third", {"sync_c": 5.0, "csim": 0.6}, CASES), root)
    for s, sc, cs in ((C.GROUND_TRUTH, 8.0, csim_gt), (C.AUDIO_SHIFTED, 3.0, 0.85), (C.STILL_REFERENCE, 0.5, 0.9),
                      (C.OTHER_IDENTITY, 7.5, 0.2)):
        store.write_run(system_rows(s, {"sync_c": sc, "csim": cs}, CASES), root)


def test_leaderboard_prints_ranked_table_with_intervals(tmp_path, monkeypatch):
    monkeypatch.setenv("KLING_HOME", str(tmp_path))  # default store: $KLING_HOME/leaderboard
    _fill(store.default_root())
    r = CliRunner().invoke(_app(), ["leaderboard", "--metric", "sync_c"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "demo / sync_c (syncnet_v2, sync_cd/1)"
    ours = next(line for line in lines if " ours " in line)
    assert ours.split()[0] == "1/2" and "[" in ours  # 'theirs' is incomplete: unranked
    assert "incomplete" in next(line for line in lines if " theirs " in line)
    assert any(line.split()[0] == "ctrl" for line in lines)
    assert "csim" not in r.output
    r = CliRunner().invoke(_app(), ["leaderboard", "--benchmark", "nope"])
    assert r.exit_code == 1 and "no leaderboard rows" in r.output


def test_flagged_metric_is_not_published(tmp_path):
    _fill(tmp_path, csim_gt=0.1)  # identity of ground truth below the other identity: csim is broken
    r = CliRunner().invoke(_app(), ["leaderboard", "--store", str(tmp_path), "--no-controls"])
    assert r.exit_code == 0, r.output
    block = r.output.split("demo / csim")[1].split("demo / sync_c")[0]
    assert "FLAGGED" in block and "hidden" in block and "0.8" not in block.split("why:")[0]


def test_compare_prints_significance(tmp_path):
    _fill(tmp_path)
    r = CliRunner().invoke(_app(), ["compare", "ours", "third", "--metric", "sync_c", "--store", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "6 shared cases" in r.output and "p = 0.03125" in r.output and "better: ours" in r.output
