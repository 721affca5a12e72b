"""`kling leaderboard | compare | regress | baseline update | gsb | dashboard | benchmark ... | system ...`.

Thin commands over eval.benchmarks, eval.systems, eval.leaderboard, eval.gsb and eval.dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import pandas as pd
import typer

baseline_app = typer.Typer(help="Tracked baselines of the CI regression gate.", no_args_is_help=True)
benchmark_app = typer.Typer(help="Benchmark specs: validate, build the demo, build from a folder of clips.",
                            no_args_is_help=True)
system_app = typer.Typer(help="Systems (folders of generated videos): import, check, controls.", no_args_is_help=True)


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(msg, err=True)
    raise typer.Exit(code)


def _rows(current: Optional[Path], benchmark: Optional[str] = None) -> pd.DataFrame:
    from eval.leaderboard.store import default_root, read_any

    df = read_any(current or default_root())
    if benchmark is not None:
        df = df[df["benchmark"] == benchmark]
    return df


def format_leaderboard(agg: pd.DataFrame, show_controls: bool = True) -> str:
    """The aggregate table as aligned text: one block per benchmark and metric (backbone, protocol)."""
    from eval.dashboard.build import fmt, metric_label
    from eval.leaderboard.controls import control_mask

    lines = []
    agg = agg.assign(label=agg.apply(metric_label, axis=1), control=control_mask(agg["system"]))
    for (bench, label), g in agg.groupby(["benchmark", "label"], sort=True):
        flagged = bool(g["flagged"].any()) if "flagged" in g else False
        lines.append(f"\n{bench} / {label}" + ("   ** FLAGGED: failed its controls, not published **" if flagged else ""))
        lines.append(f"  {'rank':>6}  {'system':<28} {'mean':>10}  {'95% CI':<22} {'n':>4}  status")
        g = g.sort_values(["control", "rank", "system"], na_position="last")
        for _, r in g.iterrows():
            if r["control"] and not show_controls:
                continue
            rk = "ctrl" if r["control"] else ("-" if pd.isna(r["rank"]) else f"{int(r['rank'])}/{int(r['rank_of'])}")
            hide = flagged and not r["control"]  # not published: the metric failed its controls
            ci = "" if pd.isna(r["ci_low"]) or hide else f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
            value = "hidden" if hide else fmt(r["value"])
            status = r["status"] + (f" ({r['reason']})" if r["status"] != "ok" and r["reason"] else "")
            lines.append(f"  {rk:>6}  {r['system']:<28} {value:>10}  {ci:<22} {fmt(r['n']):>4}  {status}")
        if flagged:
            lines.append(f"  why: {g['flag_reason'].dropna().iloc[0]}")
    return "\n".join(lines).lstrip("\n")


def leaderboard(benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b"),
                metric: Optional[str] = typer.Option(None, "--metric", "-m"),
                store: Optional[Path] = typer.Option(None, help="store folder or one run Parquet (default: $KLING_HOME/leaderboard)"),
                controls: bool = typer.Option(True, "--controls/--no-controls", help="show the control systems")) -> None:
    """Print the leaderboard: mean over cases, 95% bootstrap interval, rank within backbone + protocol."""
    from eval.dashboard.build import dashboard_tables

    df = _rows(store, benchmark)
    if metric is not None:
        df = df[df["metric"] == metric]
    if df.empty:
        _fail("no leaderboard rows" + (f" for benchmark {benchmark!r}" if benchmark else "")
              + (f" and metric {metric!r}" if metric else ""), 1)
    agg, _ = dashboard_tables(df)
    typer.echo(format_leaderboard(agg, controls))


def compare(system_a: str, system_b: str, metric: str = typer.Option(..., "--metric", "-m"),
            benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b"),
            store: Optional[Path] = typer.Option(None)) -> None:
    """Paired comparison of two systems on the cases both have, with a sign-flip permutation p-value."""
    from eval.dashboard.build import fmt
    from eval.leaderboard.aggregate import paired_comparison

    try:
        c = paired_comparison(_rows(store, benchmark), system_a, system_b, metric, benchmark)
    except ValueError as exc:
        _fail(str(exc), 1)
    typer.echo(f"{metric} on {c.benchmark} ({c.n} shared cases, {c.backbone}, {c.protocol_version}):\n"
               f"  {system_a} {fmt(c.mean_a)} vs {system_b} {fmt(c.mean_b)}; difference {fmt(c.diff)} "
               f"[{fmt(c.ci_low)}, {fmt(c.ci_high)}], p = {c.p_value:.4g}; wins {c.wins_a}-{c.wins_b}, ties {c.ties}; "
               f"better: {c.better or 'neither'}")


def regress(baseline: Path = typer.Option(..., help="tracked baseline, reports/baselines/<benchmark>.parquet"),
            current: Optional[Path] = typer.Option(None, help="run Parquet or store folder (default: the store)"),
            tolerances: Optional[Path] = typer.Option(None, help="default: tolerances.yaml next to the baseline"),
            verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Compare a run with the baseline; exit 1 naming every metric that regressed (old, new, tolerance)."""
    from eval.leaderboard.regress import compare_to_baseline, load_tolerances
    from eval.leaderboard.store import read_any

    if not baseline.is_file():
        _fail(f"no baseline at {baseline}; create one with `kling baseline update --benchmark B --reason ...`")
    base = read_any(baseline, latest=False)
    cur = _rows(current)
    cur = cur[cur["benchmark"].isin(set(base["benchmark"]))]
    tol = load_tolerances(tolerances or baseline.parent / "tolerances.yaml")
    report = compare_to_baseline(cur, base, tol)
    typer.echo(report.format(verbose))
    if not report.ok:
        raise typer.Exit(1)


@baseline_app.command("update")
def baseline_update(benchmark: str = typer.Option(..., "--benchmark", "-b"),
                    reason: str = typer.Option(..., help="why the baseline moves (recorded in history.jsonl)"),
                    current: Optional[Path] = typer.Option(None, help="run Parquet or store folder"),
                    out: Optional[Path] = typer.Option(None, help="default: reports/baselines/<benchmark>.parquet")) -> None:
    """Replace the tracked baseline of a benchmark with the current run's aggregates, recording why."""
    from eval.leaderboard.regress import baseline_path, update_baseline

    rows = _rows(current, benchmark)
    if rows.empty:
        _fail(f"no rows for benchmark {benchmark!r}")
    try:
        path = update_baseline(rows, out or baseline_path(benchmark), reason)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"baseline {path} updated ({rows['system'].nunique()} systems); reason recorded in {path.parent / 'history.jsonl'}")


def gsb(judgments: Path, focus: Optional[str] = typer.Option(None, help="orient every pair so this system is A"),
        unit: str = typer.Option("case", help="bootstrap unit: case or judgment"),
        out: Optional[Path] = typer.Option(None, help="write the table as Parquet")) -> None:
    """GSB table from pairwise judgments (CSV/Parquet: case, system_a, system_b, dimension, judgment, rater)."""
    from eval.gsb import JudgmentError, format_table, gsb_table
    from kling.atomic import write_parquet_atomic

    try:
        table = gsb_table(judgments, focus=focus, unit=unit)
    except JudgmentError as exc:
        _fail(str(exc))
    typer.echo(format_table(table))
    if out:
        write_parquet_atomic(table, out)


def dashboard(store: Optional[Path] = typer.Option(None), out: Optional[Path] = typer.Option(None),
              assertions: Optional[Path] = typer.Option(None, help="Parquet of failed assertions (system, clip_id, ...)"),
              data: Optional[Path] = typer.Option(None, help="data folder whose systems' videos the gallery shows "
                                                  "(default: the user's, when --store is not given)")) -> None:
    """Write the static HTML dashboard and print its path."""
    from eval.dashboard import build_dashboard
    from kling.paths import Layout

    typer.echo(build_dashboard(store, out, assertions, layout=Layout(data) if data else None))


@benchmark_app.command("validate")
def benchmark_validate(spec: Path, media: bool = typer.Option(False, "--media", help="also open every file")) -> None:
    """Check a spec file; every problem is listed with its case and field."""
    from eval.benchmarks import BenchmarkSpecError, load_benchmark

    try:
        b = load_benchmark(spec, check_files=True, check_media=media)
    except (BenchmarkSpecError, OSError, ValueError) as exc:
        _fail(str(exc), 1)
    typer.echo(f"{spec}: benchmark {b.name!r} v{b.version}, {len(b.cases)} cases, ok")


@benchmark_app.command("demo")
def benchmark_demo(out: Path, corpus: Optional[Path] = typer.Option(None, help="demo corpus folder (generated if absent)"),
                   long: List[str] = typer.Option(None, "--long", help="long classes to build: 1min, 5min")) -> None:
    """Build the offline demo benchmark from the demo corpus."""
    from eval.benchmark_recipes import build_demo_benchmark
    from kling.demo import generate_corpus
    from kling.paths import Layout

    try:
        manifest = generate_corpus(corpus or Layout.default().demo_corpus)
        b = build_demo_benchmark(manifest, out, long_classes=long or None)
    except (OSError, ValueError) as exc:
        _fail(str(exc), 1)
    typer.echo(f"{b.path}: {len(b.cases)} cases")


@benchmark_app.command("from-clips")
def benchmark_from_clips(folder: Path, out: Path, style: str = typer.Option("hdtf", help="hdtf or long"),
                         name: Optional[str] = typer.Option(None), duration_class: str = typer.Option("1min"),
                         max_duration: Optional[float] = typer.Option(None, help="hdtf: cut clips to this length (s)"),
                         language: str = typer.Option("en")) -> None:
    """Build an HDTF-style or long-video benchmark from a folder of real clips."""
    from eval.benchmark_recipes import build_clip_benchmark, build_long_benchmark

    try:
        if style == "hdtf":
            res = build_clip_benchmark(folder, out, name=name or "hdtf", language=language, max_duration_s=max_duration)
        elif style == "long":
            res = build_long_benchmark(folder, out, duration_class, name=name, language=language)
        else:
            _fail(f"--style must be hdtf or long, got {style!r}")
    except (ValueError, OSError) as exc:  # no usable clip (each one's reason listed), not a folder, ...
        _fail(str(exc), 1)
    for f, why in res.skipped:
        typer.echo(f"skipped {f}: {why}")
    typer.echo(f"{res.benchmark.path}: {len(res.benchmark.cases)} cases")


@system_app.command("import")
def system_import(src: Path, dest: Path, name: str = typer.Option(...), version: str = typer.Option(...),
                  source: str = typer.Option(..., help="where the videos came from"),
                  mapping: Optional[Path] = typer.Option(None, help="CSV with columns file,case_id"),
                  benchmark: Optional[Path] = typer.Option(None, help="spec: reject files matching no case"),
                  link: bool = typer.Option(False, help="hard-link instead of copying")) -> None:
    """Import an external model's outputs as a system folder."""
    from eval.benchmarks import load_benchmark
    from eval.systems import SystemSpecError, import_system

    m = None
    try:
        if mapping is not None:
            t = pd.read_csv(mapping, dtype=str)
            m = dict(zip(t["file"], t["case_id"]))
        s = import_system(src, dest, name, version, source, mapping=m, link=link,
                          benchmark=load_benchmark(benchmark) if benchmark else None)
    except (SystemSpecError, OSError, ValueError, KeyError) as exc:  # KeyError: mapping without file/case_id
        _fail(f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc), 1)
    typer.echo(f"{s.root}: system {s.name!r} with {len(s.videos())} videos")


@system_app.command("check")
def system_check(system: Path, benchmark: Path = typer.Option(..., help="benchmark spec")) -> None:
    """Report every case of the benchmark as ok / missing / broken / short; exit 1 if any is not ok."""
    from eval.benchmarks import load_benchmark
    from eval.systems import check_system, load_system

    try:
        report = check_system(load_system(system), load_benchmark(benchmark))
    except (OSError, ValueError) as exc:  # spec errors are ValueErrors
        _fail(str(exc), 1)
    typer.echo(report.summary())
    if report.problems:
        raise typer.Exit(1)


@system_app.command("controls")
def system_controls(benchmark: Path, out: Path, shift: float = typer.Option(0.5, help="audio delay (s)"),
                    force: bool = typer.Option(False)) -> None:
    """Generate the four control systems of a benchmark under OUT."""
    from eval.benchmarks import load_benchmark
    from eval.control_videos import generate_controls

    try:
        res = generate_controls(load_benchmark(benchmark), out, shift_s=shift, force=force)
    except (OSError, ValueError) as exc:
        _fail(str(exc), 1)
    for name, folder in res.folders.items():
        typer.echo(f"{name}: {folder}")
    typer.echo(f"{len(res.written)} written, {len(res.reused)} reused, {len(res.skipped)} skipped")


def register(app: typer.Typer) -> None:
    app.command("leaderboard")(leaderboard)
    app.command("compare")(compare)
    app.command("regress")(regress)
    app.command("gsb")(gsb)
    app.command("dashboard")(dashboard)
    app.add_typer(baseline_app, name="baseline")
    app.add_typer(benchmark_app, name="benchmark")
    app.add_typer(system_app, name="system")
