"""Leaderboard aggregates: mean over cases with a bootstrap confidence interval, ranks within comparable
groups, and paired comparisons between two systems on the same cases.

- Deterministic: the bootstrap generator is seeded from `seed` and the row's key (system, benchmark,
  metric, backbone, protocol), and values are sorted by case id first, so the same inputs give the same
  numbers bit for bit whatever the row order or the other systems present.
- Missing is never silent: every case of the benchmark (given, or any case some system has a row for)
  without an ok value counts as missing; the aggregate then carries `n_missing`, the case ids, status "incomplete", and gets no rank.
- Ranks only among rows sharing benchmark, metric, backbone (name and sha256) and protocol version;
  controls and metrics flagged by their controls are never ranked.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from eval.leaderboard.controls import as_frame, control_mask, evaluate_controls, flagged_metrics, mark_flagged, violations
from eval.leaderboard.schema import AGGREGATE, COLUMNS, WHOLE

N_BOOT = 2000
LEVEL = 0.95
KEY = ["run_id", "system", "benchmark", "metric", "backbone", "backbone_sha256", "protocol_version"]
RANK_GROUP = ["benchmark", "metric", "backbone", "backbone_sha256", "protocol_version"]
EXTRA_COLUMNS = ["ci_low", "ci_high", "n_cases", "n_missing", "missing_cases"]
RUN_FIELDS = ["git_sha", "checkpoint", "config_hash", "created_at"]


@dataclass(frozen=True)
class BootstrapCI:
    mean: float
    stderr: float | None
    low: float | None
    high: float | None
    n: int


def _rng(seed: int, key: Iterable[Any]) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(map(str, key)).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def bootstrap_ci(values: Iterable[float], n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                 key: Iterable[Any] = ()) -> BootstrapCI:
    """Mean of `values` with the bootstrap standard error and percentile interval (resampling values)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if x.size == 0:
        return BootstrapCI(math.nan, None, None, None, 0)
    mean = float(x.mean())
    if x.size == 1:
        return BootstrapCI(mean, None, None, None, 1)
    idx = _rng(seed, key).integers(0, x.size, size=(n_boot, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return BootstrapCI(mean, float(means.std(ddof=1)), float(lo), float(hi), int(x.size))


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in COLUMNS:
        if c not in df:
            df[c] = None
    for c in ("backbone", "backbone_sha256", "protocol_version", "run_id", "checkpoint"):
        df[c] = df[c].fillna("")
    df["window"] = df["window"].fillna(WHOLE)
    df["clip_id"] = df["clip_id"].fillna(AGGREGATE)
    df["status"] = df["status"].fillna("ok")
    return df


def aggregate(rows: Any, cases: Mapping[str, Iterable[str]] | Iterable[str] | None = None, n_boot: int = N_BOOT,
              level: float = LEVEL, seed: int = 0) -> pd.DataFrame:
    """One aggregate row per (run, system, benchmark, metric, backbone, protocol) with CI columns.

    From the per-case whole-clip rows when there are any; else (set-level metrics such as FID) the stored
    aggregate row is passed through. `cases`: the expected case ids (one list, or benchmark -> list); by
    default every case that any system has a whole-clip row for on that benchmark, so a case one system
    skipped shows up as missing in its aggregate.
    """
    df = _prepare(as_frame(rows))
    out_cols = COLUMNS + EXTRA_COLUMNS
    if df.empty:
        return pd.DataFrame(columns=out_cols)
    clip_rows = df[(df["clip_id"] != AGGREGATE) & (df["window"] == WHOLE)]
    if cases is None:  # every case any system has a row for, on that benchmark
        expected = {b: sorted(set(g)) for b, g in clip_rows.groupby("benchmark")["clip_id"]}
    else:
        expected = cases if isinstance(cases, Mapping) else {None: list(cases)}
    agg_rows = df[(df["clip_id"] == AGGREGATE) & (df["window"] == WHOLE)]
    out: list[dict[str, Any]] = []
    for key, g in clip_rows.groupby(KEY, sort=True):
        rec = dict(zip(KEY, key))
        want = expected.get(rec["benchmark"], expected.get(None))
        g = g.sort_values("clip_id", kind="stable")
        ok = g[(g["status"] == "ok") & g["value"].notna() & np.isfinite(g["value"].astype(float))]
        vals = ok.groupby("clip_id", sort=True)["value"].mean()  # one value per case
        all_cases = sorted(set(g["clip_id"]) | set(want or []))
        missing = [c for c in all_cases if c not in vals.index]
        ci = bootstrap_ci(vals.to_numpy(), n_boot, level, seed, key)
        reasons = sorted({str(r) for r in g[~g["clip_id"].isin(vals.index)]["reason"].dropna()})
        status = "unavailable" if ci.n == 0 else ("incomplete" if missing else "ok")
        reason = None
        if missing:
            reason = f"{len(missing)} of {len(all_cases)} cases without a value: {', '.join(missing)}"
            reason += f" ({'; '.join(reasons)})" if reasons else ""
        out.append(rec | _run_fields(g) | {
            "clip_id": AGGREGATE, "window": WHOLE, "value": None if ci.n == 0 else ci.mean, "stderr": ci.stderr,
            "n": ci.n, "higher_is_better": _hib(g), "status": status, "reason": reason, "ci_low": ci.low,
            "ci_high": ci.high, "n_cases": len(all_cases), "n_missing": len(missing),
            "missing_cases": ",".join(missing) or None})
    have = {tuple(r[k] for k in KEY) for r in out}
    for _, r in agg_rows.iterrows():
        if tuple(r[k] for k in KEY) in have:
            continue  # recomputed from the cases above
        rec = {c: r[c] for c in COLUMNS}
        rec |= {c: (r[c] if c in r and pd.notna(r[c]) else None) for c in EXTRA_COLUMNS}
        if rec["n_missing"] is None:
            rec["n_missing"] = 0
        out.append(rec)
    res = pd.DataFrame(out, columns=out_cols)
    return res.sort_values(["benchmark", "metric", "system", "run_id"], kind="stable").reset_index(drop=True)


def _run_fields(g: pd.DataFrame) -> dict[str, Any]:
    first = g.iloc[0]
    return {c: first[c] for c in RUN_FIELDS}


def _hib(g: pd.DataFrame) -> bool | None:
    vals = g["higher_is_better"].dropna()
    return None if vals.empty else bool(vals.iloc[0])


def rank(agg: pd.DataFrame, flagged: set[tuple] | None = None) -> pd.DataFrame:
    """Add `rank` (1 = best; ties share the best rank) and `rank_of` (group size) to aggregate rows.

    Ranked: status "ok", a direction, not a control, not flagged. Everything else gets rank NA.
    """
    out = agg.copy()
    out["rank"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["rank_of"] = pd.array([pd.NA] * len(out), dtype="Int64")
    if out.empty:
        return out
    flagged = flagged or set()
    key = out[RANK_GROUP].fillna("").apply(tuple, axis=1)
    eligible = (out["status"] == "ok") & out["value"].notna() & out["higher_is_better"].notna() \
        & ~control_mask(out["system"]) & ~key.isin(flagged)
    for _, idx in out[eligible].groupby(RANK_GROUP, sort=False).groups.items():
        g = out.loc[idx]
        sign = np.where(g["higher_is_better"].astype(bool), -1.0, 1.0)
        score = pd.Series(sign * g["value"].astype(float).to_numpy(), index=g.index)
        out.loc[idx, "rank"] = score.rank(method="min").astype("int64").to_numpy()
        out.loc[idx, "rank_of"] = len(idx)
    return out


def rank_table(rows: Any) -> tuple[pd.DataFrame, list]:
    """The leaderboard of `rows` (long rows, usually the latest run per system and benchmark): aggregates
    with bootstrap intervals, metrics that fail their controls marked `flagged` (with `flag_reason`) and left
    unranked, the rest ranked; and every control outcome (eval.leaderboard.controls.ControlOutcome)."""
    outcomes = evaluate_controls(rows)
    bad = violations(outcomes)
    return rank(mark_flagged(aggregate(rows), bad), flagged_metrics(bad)), outcomes


@dataclass(frozen=True)
class PairedComparison:
    benchmark: str
    metric: str
    system_a: str
    system_b: str
    n: int  # cases both systems have
    mean_a: float
    mean_b: float
    diff: float  # mean of (a - b) per case
    ci_low: float | None
    ci_high: float | None
    p_value: float  # two-sided paired sign-flip permutation test (exact up to 16 cases)
    wins_a: int  # cases where a is better by the metric's direction
    wins_b: int
    ties: int
    higher_is_better: bool | None
    backbone: str
    protocol_version: str

    @property
    def better(self) -> str | None:
        if self.higher_is_better is None or self.diff == 0:
            return None
        return self.system_a if (self.diff > 0) == self.higher_is_better else self.system_b

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"better": self.better}


class IncomparableError(ValueError):
    """The two systems' numbers come from different backbones or protocol versions."""


def sign_flip_p(diffs: np.ndarray, n_perm: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of mean(diffs) != 0 under random sign flips (exact enumeration for n <= 16)."""
    d = np.asarray(diffs, np.float64)
    n = d.size
    if n == 0:
        return 1.0
    obs = abs(d.mean()) - 1e-12 * max(1.0, abs(d).max())
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return float(np.mean(np.abs(signs @ d / n) >= obs))
    signs = _rng(seed, ("sign_flip", n)).choice((1.0, -1.0), size=(n_perm, n))
    return float((np.sum(np.abs(signs @ d / n) >= obs) + 1) / (n_perm + 1))


def paired_comparison(rows: Any, system_a: str, system_b: str, metric: str, benchmark: str | None = None,
                      n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> PairedComparison:
    """Compare two systems case by case on the cases both have (whole-clip, ok values)."""
    df = _prepare(as_frame(rows))
    df = df[(df["metric"] == metric) & (df["clip_id"] != AGGREGATE) & (df["window"] == WHOLE) & (df["status"] == "ok")
            & df["value"].notna()]
    if benchmark is not None:
        df = df[df["benchmark"] == benchmark]
    benches = sorted(set(df["benchmark"]))
    if len(benches) != 1:
        raise ValueError(f"paired comparison needs one benchmark; rows for {metric!r} cover {benches or 'none'}")
    a, b = df[df["system"] == system_a], df[df["system"] == system_b]
    for s, part in ((system_a, a), (system_b, b)):
        if part.empty:
            raise ValueError(f"no per-case {metric!r} values for system {s!r} on {benches[0]!r}")
    protos = {(s, tuple(sorted(set(zip(p["backbone"], p["backbone_sha256"], p["protocol_version"])))))
              for s, p in ((system_a, a), (system_b, b))}
    if len({p for _, p in protos}) != 1 or any(len(p) != 1 for _, p in protos):
        raise IncomparableError(f"{metric}: backbone/protocol differ between systems: {sorted(protos)}")
    va, vb = a.groupby("clip_id")["value"].mean(), b.groupby("clip_id")["value"].mean()
    common = sorted(set(va.index) & set(vb.index))
    if not common:
        raise ValueError(f"{system_a!r} and {system_b!r} share no case with a {metric!r} value")
    x, y = va[common].to_numpy(float), vb[common].to_numpy(float)
    d = x - y
    key = ("paired", benches[0], metric, system_a, system_b)
    ci = bootstrap_ci(d, n_boot, level, seed, key)
    hib = _hib(a)
    better_a = d > 0 if hib in (True, None) else d < 0
    ties = int(np.sum(d == 0))
    backbone, _, proto = next(iter(protos))[1][0]
    return PairedComparison(benches[0], metric, system_a, system_b, len(common), float(x.mean()), float(y.mean()),
                            float(d.mean()), ci.low, ci.high, sign_flip_p(d, seed=seed),
                            int(np.sum(better_a & (d != 0))), int(np.sum(~better_a & (d != 0))), ties, hib,
                            backbone, proto)
