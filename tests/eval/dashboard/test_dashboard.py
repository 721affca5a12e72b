"""The static dashboard: self-contained HTML holding the Parquet's numbers, the headline table first (best
per column, controls beneath, metrics no system has folded), controls apart, drill-down, the gallery."""

from __future__ import annotations

import html
import re

import pandas as pd
import pyarrow as pa

from eval.dashboard import build_dashboard, fmt
from eval.leaderboard import controls as C
from eval.leaderboard import store
from eval.leaderboard.schema import RunContext, complete_rows
from eval.leaderboard.synthetic import fill_synthetic_store as fill_store
from eval.leaderboard.synthetic import system_rows
from kling.paths import Layout

FID_REASON = "Inception weights missing: run `kling weights fetch inception`"
# ours leads Sync-C and FVD, theirs Sync-D and CSIM; some control beats both in every column
HEADLINE_MEANS = {
    "ours": {"sync_c": 7.2, "sync_d": 8.5, "csim": 0.70, "fvd": 300.25},
    "theirs": {"sync_c": 6.0, "sync_d": 7.0, "csim": 0.85, "fvd": 410.0},
    C.GROUND_TRUTH: {"sync_c": 8.0, "sync_d": 6.5, "csim": 0.90, "fvd": 50.0},
    C.AUDIO_SHIFTED: {"sync_c": 3.0, "sync_d": 9.0, "csim": 0.85, "fvd": 52.0},
    C.STILL_REFERENCE: {"sync_c": 0.5, "sync_d": 11.0, "csim": 0.92, "fvd": 900.0},
    C.OTHER_IDENTITY: {"sync_c": 7.5, "sync_d": 7.0, "csim": 0.20, "fvd": 120.0},
}


def fill_headline_store(root) -> None:
    """HEADLINE_MEANS per system over five cases, and an FID unavailable for every system (one reason)."""
    for system, means in HEADLINE_MEANS.items():
        ctx = RunContext(run_id=f"run-{system}", git_sha="0" * 40, system=system, benchmark="demo",
                         config_hash="cfg", created_at="2026-11-01T00:00:00+00:00")
        fid = complete_rows([dict(metric="fid", value=None, n=0, higher_is_better=False, backbone="inception_v3",
                                  protocol_version="fid/1", status="unavailable", reason=FID_REASON)], ctx)
        store.write_run(pa.concat_tables([system_rows(system, means, [f"c{i}" for i in range(5)]), fid]), root)


def section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">')[1].split("</section>")[0]


def headline_cells(page: str) -> dict[tuple[str, str], tuple[list[str], str, str]]:
    """(system, metric) -> (classes, text, title) of every cell of the headline tables."""
    cells = re.findall(r'<td class="([^"]*)" data-system="([^"]*)" data-metric="([^"]*)"[^>]*?(?: title="([^"]*)")?>'
                       r"(.*?)</td>", section(page, "leaderboard"))
    return {(s, m): (cls.split(), text, html.unescape(title)) for cls, s, m, title, text in cells}


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
    nums = expected_numbers(tmp_path)
    for name in ("leaderboard", "all-metrics"):
        for v in nums["means"][:2] + nums["set_level"]:
            assert v in section(page, name), (name, v)
    assert C.GROUND_TRUTH not in section(page, "all-metrics")  # controls shown apart
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
    page = build_dashboard(tmp_path, tmp_path / "d.html").read_text()
    everything = section(page, "all-metrics")
    assert "csim (" not in everything and "sync_c (" in everything
    cells = headline_cells(page)
    for system in ("ours", "theirs", C.GROUND_TRUTH):  # no csim number anywhere in the headline table
        classes, text, title = cells[(system, "csim")]
        assert text == "flagged" and "flagged" in classes and "control.other_identity" in title, cells[(system, "csim")]
    assert cells[("ours", "sync_c")][1] == expected_numbers(tmp_path)["means"][0]
    flagged = page.split('<section id="flagged">')[1].split("</section>")[0]
    assert "csim" in flagged and "control.other_identity" in flagged


def test_headline_table_leads_with_best_marked_and_controls_beneath(tmp_path):
    fill_headline_store(tmp_path)
    page = build_dashboard(tmp_path, tmp_path / "d.html").read_text()
    assert page.index('<section id="leaderboard">') < page.index('<section id="all-metrics">')
    # expected straight from the Parquet with pandas: per-case means, the aggregate row of set-level FVD
    df = pd.concat([pd.read_parquet(p) for p in store.run_files(tmp_path)])
    df = df[(df.window == "all") & df.value.notna()]
    per_case = df[df.clip_id != "__all__"].groupby(["metric", "system"])["value"].mean()
    set_level = df[df.clip_id == "__all__"].set_index(["metric", "system"])["value"]
    means = pd.concat([per_case, set_level]).unstack("system")
    higher = df.groupby("metric")["higher_is_better"].first()
    systems = ["ours", "theirs"]
    best = {m: (means.loc[m, systems].idxmax() if higher[m] else means.loc[m, systems].idxmin()) for m in means.index}
    assert best == {"sync_c": "ours", "sync_d": "theirs", "csim": "theirs", "fvd": "ours"}  # the store discriminates
    cells = headline_cells(page)
    for metric in best:
        marked = [s for (s, m), (classes, _, _) in cells.items() if m == metric and "best" in classes]
        assert marked == [best[metric]], (metric, marked)
        for system in systems + list(C.CONTROLS):
            assert cells[(system, metric)][1] == fmt(means.loc[metric, system])
    assert not [s for (s, _), (classes, _, _) in cells.items() if C.is_control(s) and "best" in classes]
    # one row per system, the controls beneath in their own body
    table = section(page, "leaderboard").split('<table class="headline">')[1].split("</table>")[0]
    systems_body, controls_body = table.split('<tbody class="controls">')
    assert re.findall(r'<tr class="system"><th>([^<]+)</th>', systems_body) == systems
    assert re.findall(r'<tr class="control"><th>([^<]+)</th>', controls_body) == sorted(C.CONTROLS)
    assert 'class="control"' not in systems_body
    head = html.unescape(section(page, "leaderboard"))
    for name in ("Lip sync confidence (Sync-C) ↑", "Lip sync distance (Sync-D) ↓", "Identity (CSIM) ↑", "FVD ↓"):
        assert f">{name}</th>" in head, name
    assert '<th title="sync_d: backbone syncnet_v2, protocol sync_cd/1">' in head
    # FID: no system has it, so no column, one line with its reason once
    assert not [k for k in cells if k[1] == "fid"]
    assert f'<p class="folded">FID ↓: unavailable for every system — {FID_REASON}</p>' in head
    assert head.count(FID_REASON) == 1
    assert "fid (inception_v3, fid/1)" in section(page, "all-metrics")  # nothing lost further down


def test_gallery_references_the_videos_with_their_case_values(gallery_layout, tmp_path):
    out = build_dashboard(gallery_layout.store, tmp_path / "reports" / "d.html", layout=gallery_layout)
    gallery = section(out.read_text(), "gallery")
    c0 = gallery.split('data-case="c0"')[1].split('class="gallery-case"')[0]
    assert re.findall(r'<video src="([^"]+)"', c0) == [
        "../data/systems/demo/ours/c0.mp4", "../data/systems/demo/theirs/c0.mp4",
        "../data/systems/demo/control.ground_truth/c0.mp4"]  # systems first, then the controls
    assert '<img src="../data/benchmarks/demo/ref.png"' in c0 and "talks and nods" in c0
    assert re.findall(r'<div class="shot" data-start="([^"]+)" style="left:([0-9.]+)%;width:([0-9.]+)%', c0) == [
        ("0", "0.000", "40.000"), ("0.8", "40.000", "60.000")]
    assert "A · happy · shake · static close-up" in c0
    df = pd.concat([pd.read_parquet(p) for p in store.run_files(gallery_layout.store)])
    c0_values = df[(df.run_id != "r-old") & (df.clip_id == "c0") & (df.window == "all")].set_index(["system", "metric"])
    for system in ("ours", "theirs", C.GROUND_TRUTH):  # each video's own values for the case, under it
        figure = c0.split(f'data-system="{system}"')[1].split("</figure>")[0]
        for metric, name in (("sync_c", "Lip sync confidence (Sync-C) ↑"), ("csim", "Identity (CSIM) ↑")):
            assert f'>{name}</th><td class="num">{fmt(c0_values.loc[(system, metric), "value"])}</td>' in figure
    c1 = gallery.split('data-case="c1"')[1]
    assert c1.count("<video ") == 1 and 'class="timeline"' not in c1  # c1 (the last case) has no storyline
    assert 'data-case="c2"' not in gallery  # no video, no player


def test_gallery_without_videos_says_so_in_one_line(tmp_path):
    fill_store(tmp_path / "store")
    page = build_dashboard(tmp_path / "store", tmp_path / "d.html").read_text()
    assert section(page, "gallery") == ("<h2>Gallery</h2><p>No videos: this page was built from a leaderboard store "
                                        "alone, without the data folder.</p>")
    layout = Layout(tmp_path / "data")
    fill_store(layout.store)
    page = build_dashboard(layout.store, tmp_path / "d.html", layout=layout).read_text()
    assert section(page, "gallery") == f"<h2>Gallery</h2><p>No videos: no systems folder at {layout.systems_dir('demo')}.</p>"


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
