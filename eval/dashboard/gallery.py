"""The dashboard's gallery: per benchmark case, the systems' videos side by side in players that one control
drives (play/pause and seek, plain JavaScript), the case's reference image, the director's storyline of the
case as a timeline of shots beneath, and each video's headline values for that case under it.

Videos and images are referenced by paths relative to the page's folder, never inlined (a benchmark's
videos are far too large for one page): the page plays them from file:// beside the data folder.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path

import pandas as pd

from eval.benchmarks import SPEC_FILE, BenchmarkSpecError, Case, load_benchmark
from eval.dashboard.display import fmt
from eval.dashboard.headline import VARIANT, Column, headline_columns
from eval.leaderboard.controls import is_control
from eval.leaderboard.schema import WHOLE
from eval.systems import System, SystemSpecError, load_system
from kling.paths import Layout

log = logging.getLogger(__name__)

CSS = """
.gallery-case{margin:12px 0 24px;padding-top:8px;border-top:1px solid #ddd}.players{display:flex;flex-wrap:wrap;gap:10px}
.players figure{margin:0;width:240px}.players video,.players img{width:240px;background:#000;display:block}
.players figcaption{font-size:13px;margin:2px 0}.players figure.control figcaption{color:#666;font-style:italic}
.case-values{margin:2px 0}.case-values th,.case-values td{font-size:12px;padding:1px 4px}
.sync{display:flex;align-items:center;gap:8px;margin:6px 0}.sync .seek{flex:1;max-width:740px}
.timeline{position:relative;height:34px;max-width:820px;background:#eef;margin:4px 0}
.shot{position:absolute;top:0;bottom:0;overflow:hidden;font-size:11px;padding:2px;box-sizing:border-box;
border-right:2px solid #fff;background:#cde;cursor:pointer;white-space:nowrap}
.playhead{position:absolute;top:0;bottom:0;left:0;width:2px;background:#c00;pointer-events:none}
"""

# One control drives every video of a case; the clock and the storyline's playhead follow the furthest video.
SCRIPT = """
document.querySelectorAll(".gallery-case").forEach(box => {
  const videos = [...box.querySelectorAll("video")];
  const play = box.querySelector("button.play"), seek = box.querySelector("input.seek");
  const clock = box.querySelector(".clock"), line = box.querySelector(".timeline");
  const show = t => {
    seek.max = Math.max(0, ...videos.map(v => v.duration || 0));
    seek.value = t;
    clock.textContent = t.toFixed(2) + " s";
    if (line) line.querySelector(".playhead").style.left = Math.min(100, 100 * t / line.dataset.duration) + "%";
  };
  const seekAll = t => { videos.forEach(v => { v.currentTime = t; }); show(t); };
  const idle = () => videos.every(v => v.paused || v.ended);
  play.addEventListener("click", () => {
    if (idle()) {
      seekAll(+seek.value >= +seek.max ? 0 : +seek.value);  // from the end, play again from the start
      videos.forEach(v => v.play().catch(err => console.warn(v.currentSrc + ": " + err)));
    } else {
      videos.forEach(v => v.pause());
    }
    play.textContent = idle() ? "Play" : "Pause";
  });
  seek.addEventListener("input", () => seekAll(+seek.value));
  videos.forEach(v => {
    v.addEventListener("timeupdate", () => show(Math.max(...videos.map(x => x.currentTime))));
    v.addEventListener("loadedmetadata", () => show(+seek.value));
    v.addEventListener("ended", () => { if (idle()) play.textContent = "Play"; });
  });
  box.querySelectorAll("input.sound").forEach((radio, i) =>
    radio.addEventListener("change", () => videos.forEach((v, j) => { v.muted = j !== i; })));
  box.querySelectorAll(".shot").forEach(shot => shot.addEventListener("click", () => seekAll(+shot.dataset.start)));
  show(0);
});
"""


def _url(path: Path, html_dir: Path) -> str:
    return html.escape(Path(os.path.relpath(path, html_dir)).as_posix(), quote=True)


def _systems(layout: Layout, benchmark: str) -> list[System]:
    """The benchmark's system folders, models first, then the controls (reference)."""
    folder = layout.systems_dir(benchmark)
    out = []
    for d in sorted(folder.iterdir()) if folder.is_dir() else []:
        if d.is_dir() and not d.name.startswith("."):
            try:
                out.append(load_system(d))
            except SystemSpecError as exc:
                log.warning("gallery leaves out %s: %s", d, exc)
    return sorted(out, key=lambda s: (is_control(s.root.name), s.root.name))


def _cases(layout: Layout, benchmark: str, systems: list[System]) -> list[tuple[str, Case | None]]:
    """The benchmark's cases from its prepared spec; without one, the case ids the videos are named by."""
    spec = layout.benchmark_dir(benchmark) / SPEC_FILE
    if spec.is_file():
        try:
            return [(c.id, c) for c in load_benchmark(spec, check_files=False).cases]
        except BenchmarkSpecError as exc:
            log.warning("gallery shows %s without its spec: %s", benchmark, exc)
    return [(cid, None) for cid in sorted({cid for s in systems for cid in s.videos()})]


def _values(mine: pd.DataFrame, columns: list[Column], flagged: set[tuple]) -> str:
    """One video's headline values for its case."""
    cells = []
    for c in columns:
        hit = c.select(mine)
        if hit.empty:
            continue
        r = hit.iloc[0]
        if c.variant in flagged:  # failed its controls: not published
            value = '<span class="warn" title="failed its controls (see Flagged metrics)">flagged</span>'
        elif pd.isna(r["value"]):
            why = f' title="{html.escape(str(r["reason"]), quote=True)}"' if pd.notna(r["reason"]) else ""
            value = f'<span class="warn"{why}>n/a</span>'
        else:
            value = fmt(r["value"])
        cells.append(f'<tr><th title="{html.escape(c.tooltip, quote=True)}">{html.escape(c.name)}</th>'
                     f'<td class="num">{value}</td></tr>')
    return f'<table class="case-values">{"".join(cells)}</table>' if cells else ""


def _timeline(storyline: dict) -> str:
    """The director's shots (kling.director.Storyline as a dict) along the audio; a click seeks to a shot."""
    duration = float(storyline.get("duration_s") or 0)
    shots = storyline.get("shots") or []
    if duration <= 0 or not shots:
        return ""
    parts = []
    for i, s in enumerate(shots):
        a, b = float(s["t_start"]), float(s["t_end"])
        words = " · ".join(str(s[k]) for k in ("speaker", "emotion", "head_motion", "camera") if s.get(k))
        tip = html.escape(f"shot {i}, {a:g}-{b:g} s: {s.get('prompt', '')}", quote=True)
        parts.append(f'<div class="shot" data-start="{a:g}" style="left:{100 * a / duration:.3f}%;'
                     f'width:{100 * (b - a) / duration:.3f}%" title="{tip}">{html.escape(words)}</div>')
    return f'<div class="timeline" data-duration="{duration:g}">{"".join(parts)}<div class="playhead"></div></div>'


def _case_html(benchmark: str, case_id: str, case: Case | None, videos: list[tuple[str, Path]], rows: pd.DataFrame,
               flagged: set[tuple], storyline: dict | None, html_dir: Path) -> str:
    refs = "".join(f'<figure class="reference"><img src="{_url(p, html_dir)}" alt="reference image">'
                   f"<figcaption>reference</figcaption></figure>" for p in (case.reference if case else ()))
    columns = headline_columns(rows)
    sound = html.escape(f"sound-{benchmark}/{case_id}", quote=True)  # one radio group per case
    players = []
    for i, (system, path) in enumerate(videos):  # only the first one sounds until another is chosen
        kind = "control" if is_control(system) else "system"
        players.append(
            f'<figure class="{kind}" data-system="{html.escape(system, quote=True)}">'
            f'<video src="{_url(path, html_dir)}" preload="metadata" playsinline{" muted" if i else ""}></video>'
            f'<figcaption>{html.escape(system)} <label><input type="radio" class="sound" name="{sound}"'
            f'{" checked" if i == 0 else ""}> sound</label></figcaption>'
            f'{_values(rows[rows["system"] == system], columns, flagged)}</figure>')
    instruction = f'<p class="instruction">{html.escape(case.instruction)}</p>' if case and case.instruction else ""
    return (f'<div class="gallery-case" data-case="{html.escape(case_id, quote=True)}"><h4>{html.escape(case_id)}</h4>'
            f'{instruction}<div class="players">{refs}{"".join(players)}</div>'
            f'<div class="sync"><button type="button" class="play">Play</button>'
            f'<input type="range" class="seek" min="0" max="0" step="0.01" value="0" aria-label="seek every video">'
            f'<span class="clock">0.00 s</span></div>{_timeline(storyline) if storyline else ""}</div>')


def gallery_html(rows: pd.DataFrame, agg: pd.DataFrame, layout: Layout | None, html_dir: Path) -> str:
    """The gallery of every benchmark in `rows` (long rows; `agg`: their ranked aggregates, for the flags)
    whose systems folder `layout` has; one line saying why when there is none."""
    if layout is None:
        return "<p>No videos: this page was built from a leaderboard store alone, without the data folder.</p>"
    from kling.director.batch import read_storylines  # the director's modules load only for a gallery

    benchmarks = sorted(set(rows["benchmark"])) if len(rows) else []
    out = []
    for bench in benchmarks:
        systems = _systems(layout, bench)
        if not systems:
            continue
        storylines = read_storylines(layout.storylines_dir(bench))
        flagged = {tuple(k) for k in agg[agg["flagged"] & (agg["benchmark"] == bench)][VARIANT].fillna("").to_numpy()}
        whole = rows[(rows["benchmark"] == bench) & (rows["window"].fillna(WHOLE) == WHOLE)]
        cases = []
        for case_id, case in _cases(layout, bench, systems):
            videos = [(s.root.name, v) for s in systems if (v := s.video(case_id)) is not None]
            if videos:
                cases.append(_case_html(bench, case_id, case, videos, whole[whole["clip_id"] == case_id], flagged,
                                        storylines.get(case_id), html_dir))
        out.append(f"<h3>{html.escape(bench)}</h3>" + ("".join(cases) or "<p>No case has a video.</p>"))
    if not out:
        where = ", ".join(str(layout.systems_dir(b)) for b in benchmarks) or str(layout.root / "systems")
        return f"<p>No videos: no systems folder at {html.escape(where)}.</p>"
    return "\n".join(out) + f'<script type="text/javascript">{SCRIPT}</script>'
