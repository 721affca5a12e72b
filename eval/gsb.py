"""Human preference by GSB (good / same / bad) pairwise judgments, as in the KlingAvatar reports.

A judgment compares system A with system B on one case and one dimension (overall, face-lip sync, visual
quality, motion quality, motion expressiveness, text relevance, ...): G = A is better, S = the same,
B = A is worse. Per (A, B, dimension): GSB score = (G + S) / (B + S) (> 1: A preferred), the G/S/B
shares, and a percentile bootstrap interval of the score resampling cases (a case's judgments by several
raters move together), seeded so the same judgments give the same table.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["case", "system_a", "system_b", "dimension", "judgment", "rater"]
_JUDGMENTS = {
    "g": "G", "good": "G", "a": "G", "a>b": "G", ">": "G", "better": "G", "win": "G", "1": "G",
    "s": "S", "same": "S", "tie": "S", "=": "S", "a=b": "S", "equal": "S", "0": "S",
    "b": "B", "bad": "B", "b>a": "B", "<": "B", "worse": "B", "lose": "B", "loss": "B", "-1": "B",
}
_FLIP = {"G": "B", "S": "S", "B": "G"}
N_BOOT = 2000
LEVEL = 0.95


class JudgmentError(ValueError):
    """A judgments file that cannot be read; the message names the row and column."""


def gsb_score(g: float, s: float, b: float) -> float:
    """(G + S) / (B + S), from counts or percentage shares; inf when B + S is 0."""
    den = b + s
    if den == 0:
        return math.inf if g + s > 0 else math.nan
    return (g + s) / den


def load_judgments(path_or_df: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and normalise judgments (CSV or Parquet): judgments become "G"/"S"/"B"; bad rows raise."""
    if isinstance(path_or_df, pd.DataFrame):
        df = path_or_df.copy()
        where = "judgments"
    else:
        path = Path(path_or_df)
        where = str(path)
        if not path.is_file():
            raise JudgmentError(f"{path}: file not found")
        df = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path, dtype=str)
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in COLUMNS if c not in df]
    if missing:
        raise JudgmentError(f"{where}: missing column(s) {missing}; expected {COLUMNS}")
    df = df[COLUMNS].copy()
    problems = []
    for col in COLUMNS:
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        for i in np.flatnonzero(empty.to_numpy())[:5]:
            problems.append(f"row {i + 2}: column {col!r} is empty")
        df[col] = df[col].astype(str).str.strip()
    norm = df["judgment"].str.lower().map(_JUDGMENTS)
    for i in np.flatnonzero(norm.isna().to_numpy())[:5]:
        problems.append(f"row {i + 2}: column 'judgment' has {df['judgment'].iloc[i]!r}; expected G/S/B "
                        f"(or good/same/bad, A/tie/B)")
    same = df["system_a"] == df["system_b"]
    for i in np.flatnonzero(same.to_numpy())[:5]:
        problems.append(f"row {i + 2}: system_a and system_b are both {df['system_a'].iloc[i]!r}")
    if problems:
        raise JudgmentError(f"{where}: " + "; ".join(problems))
    df["judgment"] = norm
    df["dimension"] = df["dimension"].str.lower().str.replace(r"[\s_-]+", " ", regex=True)
    return df.reset_index(drop=True)


def orient(df: pd.DataFrame, focus: str) -> pd.DataFrame:
    """Put `focus` in system_a on every row that involves it (flipping G and B); drop the other rows."""
    df = df[(df["system_a"] == focus) | (df["system_b"] == focus)].copy()
    flip = df["system_b"] == focus
    df.loc[flip, ["system_a", "system_b"]] = df.loc[flip, ["system_b", "system_a"]].to_numpy()
    df.loc[flip, "judgment"] = df.loc[flip, "judgment"].map(_FLIP)
    return df


def _scores(counts: np.ndarray) -> np.ndarray:
    """GSB scores of rows of (G, S, B) counts."""
    g, s, b = counts[:, 0], counts[:, 1], counts[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b + s > 0, (g + s) / np.where(b + s > 0, b + s, 1), np.where(g + s > 0, np.inf, np.nan))


def gsb_table(judgments: Any, focus: str | None = None, n_boot: int = N_BOOT, level: float = LEVEL,
              seed: int = 0, unit: str = "case") -> pd.DataFrame:
    """Per (system_a, system_b, dimension): n, G/S/B counts and % shares, GSB score and its interval.

    `focus`: orient every pair so this system is A. `unit`: resample "case" (default) or "judgment".
    """
    df = load_judgments(judgments)
    if focus is not None:
        df = orient(df, focus)
        if df.empty:
            raise JudgmentError(f"no judgment involves system {focus!r}")
    if unit not in ("case", "judgment"):
        raise ValueError("unit must be 'case' or 'judgment'")
    out = []
    for (a, b, dim), g in df.groupby(["system_a", "system_b", "dimension"], sort=True):
        g = g.sort_values(["case", "rater", "judgment"], kind="stable")
        onehot = np.stack([(g["judgment"] == k).to_numpy(np.int64) for k in "GSB"], axis=1)
        units = g["case"].to_numpy() if unit == "case" else np.arange(len(g))
        uniq, inv = np.unique(units, return_inverse=True)
        per_unit = np.zeros((len(uniq), 3), np.int64)
        np.add.at(per_unit, inv, onehot)
        total = per_unit.sum(axis=0)
        n = int(total.sum())
        lo = hi = None
        if len(uniq) > 1:
            key = hashlib.sha256(f"{a}\x1f{b}\x1f{dim}".encode()).digest()
            rng = np.random.default_rng([seed, int.from_bytes(key[:8], "little")])
            idx = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
            boot = _scores(per_unit[idx].sum(axis=1))
            boot = boot[np.isfinite(boot)]
            if boot.size:
                alpha = (1 - level) / 2
                lo, hi = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
        out.append({"system_a": a, "system_b": b, "dimension": dim, "n": n, "n_cases": int(g["case"].nunique()),
                    "n_raters": int(g["rater"].nunique()), "G": int(total[0]), "S": int(total[1]), "B": int(total[2]),
                    "G_pct": 100 * total[0] / n, "S_pct": 100 * total[1] / n, "B_pct": 100 * total[2] / n,
                    "gsb": gsb_score(*map(float, total)), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(out)


def format_table(table: pd.DataFrame) -> str:
    lines = [f"{'A':<16} {'B':<16} {'dimension':<22} {'n':>5} {'G%':>6} {'S%':>6} {'B%':>6} {'GSB':>6}  95% CI"]
    for r in table.itertuples(index=False):
        ci = "n/a" if r.ci_low is None or pd.isna(r.ci_low) else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
        lines.append(f"{r.system_a:<16} {r.system_b:<16} {r.dimension:<22} {r.n:>5} {r.G_pct:>6.1f} {r.S_pct:>6.1f} "
                     f"{r.B_pct:>6.1f} {r.gsb:>6.2f}  {ci}")
    return "\n".join(lines)
