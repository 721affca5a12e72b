"""The dashboard in a real headless browser (Debian's chromium via Playwright) with the network blocked:
it renders every chart with no console error and shows the Parquet's numbers.

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


def test_dashboard_renders_offline_with_the_numbers(browser, tmp_path):
    fill_store(tmp_path)
    html = build_dashboard(tmp_path, tmp_path / "dash.html")
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
