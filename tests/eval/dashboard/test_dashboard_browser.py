"""The dashboard in a real headless browser (Debian's chromium via Playwright) with the network blocked:
it renders every chart with no console error and shows the Parquet's numbers; the gallery's one control
plays and seeks every video of a case together.

Needs `apt-get install chromium` and `pip install playwright` (never `playwright install`); skipped
with the reason otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eval.dashboard import build_dashboard
import pandas as pd

from eval.dashboard import fmt
from eval.leaderboard import controls as C
from eval.leaderboard import store
from eval.leaderboard.synthetic import fill_synthetic_store as fill_store

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-headless-shell", shutil.which("chromium") or "")
                 if p and Path(p).is_file()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def expected_numbers(root) -> dict[str, list[str]]:
    """Numbers read straight from the Parquet files with pandas (not the dashboard's code path)."""
    df = pd.concat([pd.read_parquet(p) for p in store.run_files(root)])
    df = df[df.run_id != "r-old"]
    whole = df[(df.window == "all") & (df.clip_id != "__all__") & df.value.notna()]
    means = whole.groupby(["system", "metric"])["value"].mean()
    return {"means": [fmt(means[("ours", "sync_c")]), fmt(means[("theirs", "csim")]), fmt(means[(C.GROUND_TRUTH, "sync_c")])],
            "cases": [fmt(v) for v in whole[whole.system == "ours"]["value"]], "set_level": [fmt(300.25)]}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_offline(browser, html: Path):
    """The page at `html` with every non-file request blocked; returns it with its console errors and the
    requests it tried."""
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(html.as_uri())
    page.evaluate("window.dashboardRendered")
    return page, errors, requests


def test_dashboard_renders_offline_with_the_numbers(browser, tmp_path):
    fill_store(tmp_path)
    page, errors, requests = open_offline(browser, build_dashboard(tmp_path, tmp_path / "dash.html"))
    assert errors == [] and requests == []
    n_charts = page.locator("div.chart").count()
    assert n_charts >= 4 and page.locator("div.chart[data-rendered='1'] svg").count() == n_charts
    nums = expected_numbers(tmp_path)
    table = page.locator("table.leaderboard").first.inner_text()
    for v in nums["means"][:2] + nums["set_level"]:
        assert v in table, (v, table)
    assert nums["means"][2] in page.locator("table.controls").first.inner_text()
    page.locator("details[data-system='ours'] summary").first.click()
    cases = page.locator("details[data-system='ours'] table.cases").first.inner_text()
    assert all(v in cases for v in nums["cases"])
    svg_text = page.locator("#chart-metric-0 svg").text_content()
    assert "csim" in svg_text  # the chart drew its title and axes
    page.close()


CASE_VIDEOS = "[...document.querySelectorAll(\".gallery-case[data-case='c0'] video\")]"


def test_gallery_plays_and_seeks_every_video_of_a_case_together(browser, gallery_layout, tmp_path):
    html = build_dashboard(gallery_layout.store, tmp_path / "reports" / "dash.html", layout=gallery_layout)
    page, errors, requests = open_offline(browser, html)
    page.wait_for_function(f"{CASE_VIDEOS}.every(v => v.readyState >= 1)", timeout=20000)
    assert page.evaluate(f"{CASE_VIDEOS}.map(v => v.duration)") == [2, 1.6, 2]  # ours, theirs, ground truth
    case = page.locator(".gallery-case[data-case='c0']")
    case.locator("button.play").click()
    assert page.evaluate(f"{CASE_VIDEOS}.map(v => v.paused)") == [False, False, False]
    assert case.locator("button.play").inner_text() == "Pause"
    times, playhead = page.evaluate("""() => {  // read at once: the videos play on
        const box = document.querySelector(".gallery-case[data-case='c0']"), seek = box.querySelector("input.seek");
        seek.value = 0.5;
        seek.dispatchEvent(new Event("input"));
        return [[...box.querySelectorAll("video")].map(v => v.currentTime), box.querySelector(".playhead").style.left]; }""")
    assert times == [0.5, 0.5, 0.5] and playhead == "25%"  # 0.5 s of the storyline's 2 s
    case.locator("button.play").click()
    assert page.evaluate(f"{CASE_VIDEOS}.map(v => v.paused)") == [True, True, True]
    case.locator(".shot").nth(1).click()  # a shot of the storyline seeks every video to its start
    assert page.evaluate(f"{CASE_VIDEOS}.map(v => v.currentTime)") == [0.8, 0.8, 0.8]
    assert errors == [] and requests == []
    page.close()
