"""The CI regression gate: compare a run with a tracked baseline, metric by metric.

Both sides are reduced to aggregate rows (eval.leaderboard.aggregate) keyed by (system, benchmark, metric,
backbone).
A metric regresses when it moves the wrong way by more than its tolerance: max(abs, rel * |baseline|),
direction from the tolerance file or else the rows' higher_is_better ("either" when neither says:
both ways count). A metric present in the baseline but missing or unavailable now fails too, and so does
one whose backbone identity or protocol version changed: its numbers are no longer comparable, and moving
the baseline is an explicit `kling baseline update --reason ...`. A backbone's identity is its weight
file's sha256, or for a self-trained evaluator (the demo's sync expert) the sha256 of its training recipe
("recipe:..."): the same recipe trained on another CPU gives other weight bytes but comparable numbers,
whose spread the tolerances cover (benchmarks/bench_cpu_spread.py measures it). A metric under a renamed backbone is
"missing" (old key) plus "new" (new key), so it fails too.
A tolerance may say when its metric means something (`defined_when: {sync_c: 0.5}`: the AV offset of a face
whose Sync-C in the baseline is under 0.5 is the argmin of a flat curve), or on how many cases its baseline
value must rest (`min_cases: 3`: a mean over the one case where a system kept a face is that case, not the
benchmark); below that floor the metric is reported "undefined", not compared.
"""

from __future__ import annotations

import getpass
import json
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from eval.leaderboard.aggregate import EXTRA_COLUMNS, aggregate
from eval.leaderboard.schema import COLUMNS, git_sha
from eval.leaderboard.store import to_table
from kling.atomic import read_parquet_metadata, write_parquet_atomic

DIRECTIONS = ("higher", "lower", "either")
MATCH = ["system", "benchmark", "metric", "backbone"]  # one metric may be computed by two backbones
HISTORY = "history.jsonl"


@dataclass(frozen=True)
class Tolerance:
    abs: float = 0.0
    rel: float = 0.0
    direction: str | None = None  # None: from higher_is_better
    # metric -> floor of its baseline value (same system, benchmark, backbone) under which this one means nothing
    defined_when: tuple[tuple[str, float], ...] = ()
    min_cases: int = 0  # cases the baseline's aggregate must rest on (its `n`) for the metric to be compared

    def allowed(self, old: float) -> float:
        return max(self.abs, self.rel * abs(old))


@dataclass
class Tolerances:
    default: Tolerance = field(default_factory=lambda: Tolerance(abs=1e-9, rel=0.01))
    metrics: dict[str, Tolerance] = field(default_factory=dict)
    # per backbone, overriding `metrics`: a self-trained evaluator's numbers follow the CPU it was trained on
    backbones: dict[str, dict[str, Tolerance]] = field(default_factory=dict)
    # per system, overriding both (metric name or "*" for all its metrics): a system whose model is trained on the
    # machine that runs the demo generates other videos on other CPUs, so every metric of it moves
    systems: dict[str, dict[str, Tolerance]] = field(default_factory=dict)
    # per benchmark, overriding all of the above with its own metrics/backbones/systems sections: a benchmark of
    # two one-minute videos is not a benchmark of nine short ones (how many cases a mean must rest on, how far a
    # minute of another CPU's model drifts)
    benchmarks: dict[str, "Tolerances"] = field(default_factory=dict)

    def for_metric(self, metric: str, backbone: str | None = None, system: str | None = None,
                   benchmark: str | None = None) -> Tolerance:
        own = self.benchmarks.get(benchmark or "")
        return (own and own._override(metric, backbone, system)) or self._override(metric, backbone, system) \
            or self.default

    def _override(self, metric: str, backbone: str | None, system: str | None) -> Tolerance | None:
        mine = self.systems.get(system or "", {})
        by_backbone = self.backbones.get(backbone or "", {})
        return mine.get(metric) or mine.get("*") or by_backbone.get(metric) or self.metrics.get(metric)


def _tol(d: Any, where: str) -> Tolerance:
    if not isinstance(d, dict) or set(d) - {"abs", "rel", "direction", "defined_when", "min_cases"}:
        raise ValueError(f"tolerances {where}: expected a mapping with abs, rel, direction, defined_when, min_cases; "
                         f"got {d!r}")
    direction = d.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"tolerances {where}: direction must be one of {DIRECTIONS}, got {direction!r}")
    for k in ("abs", "rel"):
        if k in d and (not isinstance(d[k], (int, float)) or d[k] < 0):
            raise ValueError(f"tolerances {where}: {k} must be a non-negative number, got {d[k]!r}")
    when = d.get("defined_when") or {}
    if not isinstance(when, dict) or not all(isinstance(v, (int, float)) for v in when.values()):
        raise ValueError(f"tolerances {where}: defined_when must map metric names to numbers, got {when!r}")
    min_cases = d.get("min_cases", 0)
    if not isinstance(min_cases, int) or isinstance(min_cases, bool) or min_cases < 0:
        raise ValueError(f"tolerances {where}: min_cases must be a non-negative integer, got {min_cases!r}")
    return Tolerance(float(d.get("abs", 0.0)), float(d.get("rel", 0.0)), direction,
                     tuple(sorted((str(k), float(v)) for k, v in when.items())), min_cases)


def load_tolerances(path: str | Path | None) -> Tolerances:
    """YAML: `default: {abs, rel}`, `metrics: {name: {abs, rel, direction}}` and
    `backbones: {backbone: {name: {abs, rel, direction}}}` (overrides for one backbone),
    `systems: {system: {name or "*": {...}}}` (overrides for one system) and `benchmarks: {benchmark: {metrics,
    backbones, systems}}` (overrides for one benchmark, above all the others). None: built-in default."""
    if path is None or not Path(path).is_file():
        return Tolerances()
    data = yaml.safe_load(Path(path).read_text()) or {}
    unknown = set(data) - {"default", "metrics", "backbones", "systems", "benchmarks"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)} "
                         f"(expected default, metrics, backbones, systems, benchmarks)")
    default = _tol(data["default"], f"{path}: default") if "default" in data else Tolerances().default
    benchmarks = {}
    for bench, sections in (data.get("benchmarks") or {}).items():
        sections = sections or {}
        if not isinstance(sections, dict) or set(sections) - {"metrics", "backbones", "systems"}:
            raise ValueError(f"{path}: benchmarks.{bench}: expected metrics, backbones and/or systems, got {sections!r}")
        benchmarks[bench] = _sections(sections, f"{path}: benchmarks.{bench}", default)
    return replace(_sections(data, str(path), default), benchmarks=benchmarks)


def _sections(data: dict, where: str, default: Tolerance) -> Tolerances:
    backbones = {b: {m: _tol(t, f"{where}: backbones.{b}.{m}") for m, t in (ms or {}).items()}
                 for b, ms in (data.get("backbones") or {}).items()}
    systems = {s: {m: _tol(t, f"{where}: systems.{s}.{m}") for m, t in (ms or {}).items()}
               for s, ms in (data.get("systems") or {}).items()}
    return Tolerances(default, {m: _tol(t, f"{where}: metrics.{m}") for m, t in (data.get("metrics") or {}).items()},
                      backbones, systems)


@dataclass(frozen=True)
class MetricComparison:
    system: str
    benchmark: str
    metric: str
    status: str  # "ok" | "improved" | "regressed" | "missing" | "incomparable" | "new" | "undefined"
    old: float | None
    new: float | None
    tolerance: float | None
    direction: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("regressed", "missing", "incomparable")

    def message(self) -> str:
        head = f"{self.metric} [{self.system} / {self.benchmark}]"
        if self.status in ("regressed", "ok", "improved"):
            moved = self.new - self.old if self.new is not None and self.old is not None else None
            return (f"{head}: old {_f(self.old)} -> new {_f(self.new)}, moved {_signed(moved)} "
                    f"(tolerance {_f(self.tolerance)}, {self.direction} is better){': ' + self.detail if self.detail else ''}")
        return f"{head}: {self.status}: {self.detail}"


def _short(sha: str) -> str:
    return sha[:19] if str(sha).startswith("recipe:") else str(sha)[:12]


def _signed(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.6g}"


def _f(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


@dataclass
class RegressionReport:
    comparisons: list[MetricComparison]

    @property
    def failures(self) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.failed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def format(self, verbose: bool = False) -> str:
        lines = [f"{'FAIL' if c.failed else c.status.upper():>10}  {c.message()}"
                 for c in self.comparisons if verbose or c.failed]
        counts: dict[str, int] = {}
        for c in self.comparisons:
            counts[c.status] = counts.get(c.status, 0) + 1
        lines.append(("REGRESSION: " if self.failures else "no regression: ")
                     + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) | {"failed": c.failed, "message": c.message()} for c in self.comparisons])


def summarise(rows: Any) -> pd.DataFrame:
    """Aggregate rows, one per (system, benchmark, metric, backbone); the newest run wins if several are given."""
    agg = aggregate(rows)
    if agg.empty:
        return agg
    agg = agg.sort_values(["created_at", "run_id"], na_position="first", kind="stable")
    return agg.drop_duplicates(MATCH, keep="last").set_index(MATCH, drop=False)


def compare_to_baseline(current: Any, baseline: Any, tolerances: Tolerances | None = None) -> RegressionReport:
    """Compare current rows with baseline rows (DataFrames, Tables or row lists)."""
    tolerances = tolerances or Tolerances()
    cur, base = summarise(current), summarise(baseline)
    out: list[MetricComparison] = []
    for key, b in base.iterrows():
        tol = tolerances.for_metric(b["metric"], b["backbone"], b["system"], b["benchmark"])
        direction = tol.direction or _direction(b["higher_is_better"])
        sys_, bench, metric, _ = key
        old = None if pd.isna(b["value"]) else float(b["value"])
        if old is None:
            continue  # nothing to defend: the baseline had no number
        mk = lambda status, new, detail="", t=None: MetricComparison(  # noqa: E731
            sys_, bench, metric, status, old, new, t, direction, detail)
        undefined = _below_floor(base, key, tol)
        if undefined:
            new = cur.loc[key]["value"] if key in cur.index else None
            out.append(mk("undefined", None if new is None or pd.isna(new) else float(new), undefined))
            continue
        if key not in cur.index:
            out.append(mk("missing", None, "in the baseline but not in the current run"))
            continue
        c = cur.loc[key]
        if (c["backbone_sha256"], c["protocol_version"]) != (b["backbone_sha256"], b["protocol_version"]):
            what = "training recipe" if str(b["backbone_sha256"]).startswith("recipe:") else "weights"
            out.append(mk("incomparable", None, f"{what}/protocol of {b['backbone']} changed from "
                          f"{_short(b['backbone_sha256'])} {b['protocol_version']} to {_short(c['backbone_sha256'])} "
                          f"{c['protocol_version']} (value {_f(old)} -> {_f(None if pd.isna(c['value']) else float(c['value']))});"
                          f" update the baseline explicitly"))
            continue
        new = None if pd.isna(c["value"]) else float(c["value"])
        if new is None or c["status"] == "unavailable":
            out.append(mk("missing", None, f"no value now ({c['reason'] or c['status']})"))
            continue
        allowed = tol.allowed(old)
        delta = new - old
        worse = {"higher": -delta, "lower": delta, "either": abs(delta)}[direction]
        better = {"higher": delta, "lower": -delta, "either": 0.0}[direction]
        detail = ""
        if c["status"] == "incomplete":
            detail = str(c["reason"])
        status = "regressed" if worse > allowed else ("improved" if better > allowed else "ok")
        if c["status"] == "incomplete" and b["status"] == "ok":
            status = "regressed"
        out.append(mk(status, new, detail, allowed))
    for key, c in cur.iterrows():
        if key not in base.index:
            out.append(MetricComparison(*key[:3], "new", None, None if pd.isna(c["value"]) else float(c["value"]),
                                        None, _direction(c["higher_is_better"]), "not in the baseline"))
    return RegressionReport(out)


def _below_floor(base: pd.DataFrame, key: tuple, tol: Tolerance) -> str:
    """Why the baseline's own numbers say this metric means nothing here ("" when it does)."""
    system, bench, metric, backbone = key
    n = base.loc[key]["n"]
    if tol.min_cases and (pd.isna(n) or int(n) < tol.min_cases):
        return f"not compared: the baseline's value rests on {0 if pd.isna(n) else int(n)} case(s) (< {tol.min_cases})"
    for other, floor in tol.defined_when:
        ref = (system, bench, other, backbone)
        value = base.loc[ref]["value"] if ref in base.index else None
        value = None if value is None or pd.isna(value) else float(value)
        if value is None or value < floor:
            return f"not compared: {other} {_f(value)} < {floor:g} in the baseline, where {metric} means nothing"
    return ""


def _direction(hib: Any) -> str:
    if hib is None or (isinstance(hib, float) and math.isnan(hib)) or pd.isna(hib):
        return "either"
    return "higher" if bool(hib) else "lower"


def baseline_path(benchmark: str, root: str | Path | None = None) -> Path:
    from kling.paths import baselines_dir

    return Path(root or baselines_dir()) / f"{benchmark}.parquet"


def update_baseline(current: Any, path: str | Path, reason: str, who: str | None = None) -> Path:
    """Write the aggregates of `current` as the new baseline, recording why (Parquet metadata and a line in
    history.jsonl next to it, which is tracked so the reason shows in review)."""
    if not reason or not reason.strip():
        raise ValueError("a baseline update needs a reason (--reason)")
    agg = aggregate(current)
    if agg.empty:
        raise ValueError("no rows to make a baseline from")
    path = Path(path)
    old = read_parquet_metadata(path).get("baseline") if path.is_file() else None
    record = {"reason": reason.strip(), "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "by": who or _user(), "git_sha": git_sha(), "runs": sorted(set(agg["run_id"])),
              "benchmarks": sorted(set(agg["benchmark"])), "systems": sorted(set(agg["system"])),
              "file": path.name, "previous_updated_at": (old or {}).get("updated_at")}
    write_parquet_atomic(to_table(agg[COLUMNS + EXTRA_COLUMNS]), path, {"baseline": record})
    with open(path.parent / HISTORY, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
