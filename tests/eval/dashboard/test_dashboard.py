"""The static dashboard: self-contained HTML holding the Parquet's numbers, controls apart, drill-down."""

from __future__ import annotations

import re

import pandas as pd

from eval.dashboard import build_dashboard, fmt
from eval.leaderboard import controls as C
from eval.leaderboard import store
from eval.leaderboard.synthetic import fill_synthetic_store as fill_store


def expected_numbers(root) -> dict[str, list[str]]:
    """Numbers read straight from the Parquet files (pandas, not the dashboard's code path)."""
    df = pd.concat([pd.read_parquet(p) for p in store.run_files(root)])
    df = df[df.run_id != "r-old"]
    whole = df[(df.window == "all") & (df.clip_id != "__all__") & df.value.notna()]
    means = whole.groupby(["system", "metric"])["value"].mean()
    return {
        "means": [fmt(means[("ours", "sync_c")]), fmt(means[("theirs", "csim")]), fmt(means[(C.GROUND_TRUTH, "sync_c")])],
        "cases": [fmt(v) for v in whole[whole.system == "ours"]["value"]],
        "set_level": [fmt(300.25)],
    }


def test_dashboard_is_self_contained_and_holds_the_numbers(tmp_path):
    fill_store(tmp_path)
    assertions = pd.DataFrame([{"system": "ours", "clip_id": "c3", "assertion_id": "a1", "text": "nods twice",
                                "status": "failed", "reason": "one nod found"},
                               {"system": "ours", "clip_id": "c3", "assertion_id": "a2", "text": "speaks",
                                "status": "satisfied", "reason": None}])
    out = build_dashboard(tmp_path, tmp_path / "dash.html", assertions=assertions)
    page = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing loads from the network
    assert "window.vegaEmbed" in page and page.count('class="chart"') >= 4
    leaderboard = page.split('<section id="leaderboard">')[1].split("</section>")[0]
    nums = expected_numbers(tmp_path)
    for v in nums["means"][:2] + nums["set_level"]:
        assert v in leaderboard, v
    assert C.GROUND_TRUTH not in leaderboard  # controls shown apart
    controls = page.split('<section id="controls">')[1].split("</section>")[0]
    assert nums["means"][2] in controls and "pass" in controls
    cases = page.split('<section id="cases">')[1].split("</section>")[0]
    for v in nums["cases"]:
        assert v in cases, v
    assert "assertion a1 nods twice: failed (one nod found)" in cases and "a2 speaks" not in cases
    assert "missing: no output" in cases
    assert 'id="chart-drift-0"' in page and 'id="chart-history-0"' in page  # windows and 2 runs of "ours"


def test_flagged_metric_is_listed_not_published(tmp_path):
    fill_store(tmp_path, csim_gt=0.1)
    page = build_dashboard(tmp_path).read_text()
    leaderboard = page.split('<section id="leaderboard">')[1].split("</section>")[0]
    assert "csim (" not in leaderboard and "sync_c (" in leaderboard
    flagged = page.split('<section id="flagged">')[1].split("</section>")[0]
    assert "csim" in flagged and "control.other_identity" in flagged


def test_empty_store_still_renders(tmp_path):
    page = build_dashboard(tmp_path / "empty", tmp_path / "d.html").read_text()
    assert "No runs in the store" in page


def test_dashboard_command_prints_the_path(tmp_path):
    import typer
    from typer.testing import CliRunner

    from kling.cli.leaderboard import register

    fill_store(tmp_path / "store")
    app = typer.Typer()
    register(app)
    r = CliRunner().invoke(app, ["dashboard", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "d.html")])
    assert r.exit_code == 0 and r.output.strip() == str(tmp_path / "d.html") and (tmp_path / "d.html").is_file()
