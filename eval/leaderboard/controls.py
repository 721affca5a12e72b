"""Controls as sanity bounds: the order each metric must give them, checked on every run.

Four control systems are evaluated alongside every benchmark (built by eval.systems.generate_controls):
the ground truth, the ground truth with its audio delayed by 0.5 s, the reference image held still over the
audio, and the ground truth of another identity over this case's audio. A metric that cannot order them
as it must (e.g. Sync-C of the ground truth not above the shifted control) measures something else than
it claims: it is flagged and not published.

Comparisons are paired: both controls' values are averaged over the cases they share (per-clip rows), or
taken from their aggregate rows for set-level metrics (FID, FVD) that have no per-clip value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from eval.leaderboard.schema import AGGREGATE, WHOLE

CONTROL_PREFIX = "control."
GROUND_TRUTH = "control.ground_truth"
AUDIO_SHIFTED = "control.audio_shifted"
STILL_REFERENCE = "control.still_reference"
OTHER_IDENTITY = "control.other_identity"
CONTROLS = (GROUND_TRUTH, AUDIO_SHIFTED, STILL_REFERENCE, OTHER_IDENTITY)
GROUP = ["benchmark", "metric", "backbone", "backbone_sha256", "protocol_version"]


def is_control(system: str) -> bool:
    """Whether a system is one of the controls (never ranked, shown apart)."""
    return str(system).startswith(CONTROL_PREFIX)


def control_mask(systems: pd.Series) -> pd.Series:
    """Boolean mask of the control systems in a column of system names."""
    return systems.map(is_control).astype(bool)


def without_controls(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of `df` whose system is not a control."""
    return df[~control_mask(df["system"])]


@dataclass(frozen=True)
class ControlRule:
    """`metric` must score control `better` strictly better than control `worse`.

    `direction`: "higher" / "lower"; None takes it from the rows' higher_is_better. `use_abs` compares
    absolute values (an AV offset of -12 is as far from sync as +12).
    """

    metric: str
    better: str
    worse: str
    why: str
    direction: str | None = None
    use_abs: bool = False


# Sync-C and Sync-D are, by SyncNet's protocol, measured at the best AV offset in -15..+15 frames, and a
# 0.5 s shift (12.5 frames) lies inside that search: they are shift-invariant there, so the shifted control
# is checked through the AV offset the metric reports (measured on the demo: Sync-C 1.49 for ground truth
# against 1.51 shifted, AV offset 0 against 13). Sync-C/D are checked against the still face instead.
RULES: tuple[ControlRule, ...] = (
    ControlRule("sync_c", GROUND_TRUTH, STILL_REFERENCE, "a still face carries no lip-sync"),
    ControlRule("sync_d", GROUND_TRUTH, STILL_REFERENCE, "a still face is further from its audio"),
    ControlRule("sync_av_offset", GROUND_TRUTH, AUDIO_SHIFTED, "the shifted control's offset is ~12 frames",
                direction="lower", use_abs=True),
    ControlRule("csim", GROUND_TRUTH, OTHER_IDENTITY, "another person is less similar to the reference"),
    ControlRule("csim", STILL_REFERENCE, OTHER_IDENTITY, "the reference itself beats another person"),
    ControlRule("fid", GROUND_TRUTH, STILL_REFERENCE, "one repeated frame is further from real frames"),
    ControlRule("fvd", GROUND_TRUTH, STILL_REFERENCE, "a still video is further from real motion"),
    # demo, offline director: ground truth 1.00, still reference 0.41 (its head and mouth never move)
    ControlRule("storyline_adherence", GROUND_TRUTH, STILL_REFERENCE,
                "a still face follows none of the storyline's head motion and speech"),
    # Fidelity against the case's own ground truth (eval.fidelity): the ground-truth control is that video
    # re-encoded, the still reference matches it at most where the true face happens to hold the reference's pose.
    # Demo benchmark, 9 cases: ground truth PSNR 42.3 dB, SSIM 0.985, LMD 0.019 (dlib's points move with the
    # codec's noise); still reference 24.0 dB, 0.871, 0.045; every case ordered so on its own.
    ControlRule("psnr", GROUND_TRUTH, STILL_REFERENCE, "a repeated frame is further from the true frames' pixels"),
    ControlRule("ssim", GROUND_TRUTH, STILL_REFERENCE, "a repeated frame has less of the true frames' structure"),
    ControlRule("lmd", GROUND_TRUTH, STILL_REFERENCE, "a still mouth is further from the true mouth's landmarks"),
)


@dataclass(frozen=True)
class ControlOutcome:
    benchmark: str
    metric: str
    backbone: str
    backbone_sha256: str
    protocol_version: str
    better: str
    worse: str
    status: str  # "pass" | "fail" | "missing" (a control lacks values) | "skipped" (metric not computed)
    better_value: float | None
    worse_value: float | None
    n_cases: int
    direction: str
    why: str

    @property
    def violated(self) -> bool:
        """A failed or uncheckable rule: the metric is flagged and not published."""
        return self.status in VIOLATION_STATUSES

    @property
    def message(self) -> str:
        rel = ">" if self.direction == "higher" else "<"
        lhs = f"{self.metric}({self.better})={_fmt(self.better_value)}"
        rhs = f"{self.metric}({self.worse})={_fmt(self.worse_value)}"
        head = f"[{self.benchmark} {self.backbone} {self.protocol_version}]"
        if self.status == "missing":
            return f"{head} {self.metric}: cannot check {self.better} {rel} {self.worse}: {lhs}, {rhs}"
        return f"{head} {self.metric}: expected {lhs} {rel} {rhs} ({self.why}): {self.status}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"message": self.message}


ControlViolation = ControlOutcome  # a violation is an outcome whose status is "fail" or "missing"
VIOLATION_STATUSES = ("fail", "missing")


def violations(outcomes: Iterable[ControlOutcome]) -> list[ControlOutcome]:
    """The outcomes that flag their metric (failed or uncheckable rules), in order."""
    return [o for o in outcomes if o.violated]


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def as_frame(rows: Any) -> pd.DataFrame:
    """Long rows given as a DataFrame, a pyarrow Table or a list of dicts."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if hasattr(rows, "to_pandas"):
        return rows.to_pandas()
    return pd.DataFrame(list(rows))


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    status = df["status"].fillna("ok") if "status" in df else "ok"
    return df[(status == "ok") & df["value"].notna()]


def _pair_values(g: pd.DataFrame, a: str, b: str, use_abs: bool) -> tuple[float | None, float | None, int]:
    """Means of controls a and b over the cases both have; aggregate rows when neither has clip rows."""
    g = _ok(g)
    vals = g["value"].abs() if use_abs else g["value"]
    g = g.assign(value=vals)
    clips = g[(g["clip_id"] != AGGREGATE) & (g["window"].fillna(WHOLE) == WHOLE)]
    ca, cb = clips[clips["system"] == a], clips[clips["system"] == b]
    if len(ca) or len(cb):
        va, vb = ca.groupby("clip_id")["value"].mean(), cb.groupby("clip_id")["value"].mean()
        common = sorted(set(va.index) & set(vb.index))
        if not common:
            return (float(va.mean()) if len(va) else None, float(vb.mean()) if len(vb) else None, 0)
        return float(va[common].mean()), float(vb[common].mean()), len(common)
    agg = g[(g["clip_id"] == AGGREGATE) & (g["window"].fillna(WHOLE) == WHOLE)]
    xa, xb = agg[agg["system"] == a]["value"], agg[agg["system"] == b]["value"]
    return (float(xa.mean()) if len(xa) else None, float(xb.mean()) if len(xb) else None, 0)


def evaluate_controls(rows: Any, rules: Iterable[ControlRule] = RULES, margin: float = 0.0) -> list[ControlOutcome]:
    """Every applicable rule, for every (benchmark, metric, backbone, protocol) group present in `rows`."""
    df = as_frame(rows)
    if df.empty:
        return []
    df = df.copy()
    for c in ("backbone", "backbone_sha256", "protocol_version"):
        df[c] = df[c].fillna("") if c in df else ""
    by_metric: dict[str, list[ControlRule]] = {}
    for r in rules:
        by_metric.setdefault(r.metric, []).append(r)
    present = df.groupby("benchmark")["system"].agg(lambda s: set(s)).to_dict()
    out: list[ControlOutcome] = []
    for key, g in df[df["metric"].isin(list(by_metric))].groupby(GROUP, sort=True, dropna=False):
        bench, metric, backbone, sha, proto = key
        hib = g["higher_is_better"].dropna()
        for rule in by_metric[metric]:
            direction = rule.direction or ("higher" if (len(hib) == 0 or bool(hib.iloc[0])) else "lower")
            va, vb, n = _pair_values(g, rule.better, rule.worse, rule.use_abs)
            generated = {rule.better, rule.worse} <= present.get(bench, set())
            if va is None or vb is None:
                # a control absent from the whole benchmark was not generated (e.g. no ground truth): skipped
                status = "missing" if generated and len(_ok(g)) else "skipped"
            else:
                diff = (va - vb) if direction == "higher" else (vb - va)
                status = "pass" if np.isfinite(diff) and diff > margin else "fail"
            out.append(ControlOutcome(bench, metric, backbone, sha, proto, rule.better, rule.worse, status,
                                      va, vb, n, direction, rule.why))
    return out


def check_controls(rows: Any, rules: Iterable[ControlRule] = RULES, margin: float = 0.0) -> list[ControlViolation]:
    """The failed and uncheckable rules (what a blocking asset check reports). Empty list: all good.

    "missing": both controls were generated for the benchmark but one has no value for this metric while
    other systems do, so the metric is unchecked and not published either. Controls absent from the whole
    benchmark (not generated, e.g. no ground truth) give "skipped" outcomes, listed by evaluate_controls.
    """
    return violations(evaluate_controls(rows, rules, margin))


def flagged_metrics(violations: Iterable[ControlOutcome]) -> set[tuple[str, str, str, str, str]]:
    """(benchmark, metric, backbone, backbone_sha256, protocol_version) of every metric that failed its controls."""
    return {(v.benchmark, v.metric, v.backbone, v.backbone_sha256, v.protocol_version) for v in violations}


def mark_flagged(agg: pd.DataFrame, violations: Iterable[ControlOutcome]) -> pd.DataFrame:
    """Add `flagged` (bool) and `flag_reason` to aggregate rows whose metric failed its controls."""
    violations = list(violations)
    reasons: dict[tuple, list[str]] = {}
    for v in violations:
        reasons.setdefault((v.benchmark, v.metric, v.backbone, v.backbone_sha256, v.protocol_version), []).append(v.message)
    keys = [tuple("" if pd.isna(x) else x for x in t) for t in agg[GROUP].itertuples(index=False, name=None)]
    out = agg.copy()
    out["flagged"] = [k in reasons for k in keys]
    out["flag_reason"] = ["; ".join(reasons[k]) if k in reasons else None for k in keys]
    return out
