"""Prompt-adherence score of one video: assertions checked, fraction satisfied per clip and per time window.

Protocol ``adherence-v1``:

- assertions come from the case's explicit list, else from its instruction (and storyline) through the language
  model endpoint when one is configured and its reply validates, else through the offline rule parser;
- measured kinds are checked by eval.adherence.measured; semantic kinds (emotion, gaze) by the judge on
  ``judge_frames`` frames sampled at the centres of equal parts of the span; without a judge they are
  ``unavailable``. A negated assertion is satisfied when its check fails; ``unavailable`` stays unavailable;
- score = satisfied / (satisfied + failed); unavailable assertions are counted and listed, not scored;
- windows (default 10 s, a short tail joins the previous window): assertions that must *hold* (still, static,
  speaking, people count, placement) are re-checked on their span within the window; *events* (nod, shake, zoom,
  pan) and judged assertions keep their whole-span result in every window their span overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from eval.adherence import measured
from eval.adherence.assertions import MEASURED, Assertion, load_case, parse_instruction
from eval.adherence.judge import JudgeClient, parse_instruction_llm, question_for, sample_times

PROTOCOL_NAME = "adherence-v1"
WINDOW_ALL = "all"
MIN_WINDOW_SPAN_S = 1.0


@dataclass
class AssertionResult:
    assertion: Assertion
    status: str  # "satisfied" | "failed" | "unavailable"
    start_s: float
    end_s: float
    value: float | None = None
    threshold: float | None = None
    reason: str | None = None
    window: str = WINDOW_ALL

    def to_row(self, clip_id: str) -> dict:
        a = self.assertion
        return {"clip_id": clip_id, "window": self.window, "assertion_id": a.id, "kind": a.kind, "value": a.value,
                "negated": a.negated, "checker": a.checker, "source": a.source, "text": a.text,
                "start_s": self.start_s, "end_s": self.end_s, "status": self.status, "measured": self.value,
                "threshold": self.threshold, "reason": self.reason}


def fraction_satisfied(results: list[AssertionResult]) -> tuple[float | None, int]:
    scored = [r for r in results if r.status in ("satisfied", "failed")]
    if not scored:
        return None, 0
    return sum(r.status == "satisfied" for r in scored) / len(scored), len(scored)


@dataclass
class AdherenceResult:
    status: str  # "ok" | "unavailable"
    reason: str | None
    clip_id: str
    protocol: dict
    results: list[AssertionResult] = field(default_factory=list)
    window_results: list[AssertionResult] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    metric: str = "adherence"  # "storyline_adherence": the same check against the director's shots

    @property
    def protocol_version(self) -> str:
        return self.protocol["version"]

    @property
    def score(self) -> float | None:
        return fraction_satisfied(self.results)[0]

    def counts(self) -> dict:
        return {s: sum(r.status == s for r in self.results) for s in ("satisfied", "failed", "unavailable")}

    def window_scores(self) -> list[dict]:
        out = []
        for label, a, b in self.windows:
            score, n = fraction_satisfied([r for r in self.window_results if r.window == label])
            out.append({"window": label, "start_s": a, "end_s": b, "score": score, "n": n})
        return out

    def backbone(self, checker: str | None = None) -> str:
        parts = []
        if checker in (None, MEASURED):
            parts.append(f"measured:{self.protocol['detector']}")
        if checker in (None, "semantic"):
            judge = self.protocol.get("judge")
            parts.append(f"judge:{judge['model']}" if judge else "judge:none")
        return "+".join(parts)

    def assertions_frame(self, include_windows: bool = True) -> pd.DataFrame:
        rows = [r.to_row(self.clip_id) for r in self.results]
        if include_windows:
            rows += [r.to_row(self.clip_id) for r in self.window_results]
        return pd.DataFrame(rows, columns=ASSERTION_COLUMNS)

    def failed_frame(self) -> pd.DataFrame:
        """Assertions not satisfied over the whole clip (failed, or unavailable with the reason)."""
        df = self.assertions_frame(include_windows=False)
        return df[df["status"] != "satisfied"].reset_index(drop=True)

    def to_dict(self) -> dict:
        return {
            "clip_id": self.clip_id, "status": self.status, "reason": self.reason, "score": self.score,
            **{f"n_{k}": v for k, v in self.counts().items()}, "windows": self.window_scores(),
            "assertions": [r.to_row(self.clip_id) for r in self.results],
            "failed_assertions": [r.to_row(self.clip_id) for r in self.results if r.status != "satisfied"],
            "protocol_version": self.protocol_version, "protocol": self.protocol,
        }

    def to_rows(self) -> list[dict]:
        """Leaderboard rows (DESIGN.md section 3) without the run-level fields."""
        base = dict(clip_id=self.clip_id, protocol_version=self.protocol_version, backbone_sha256=None,
                    status=self.status, reason=self.reason)

        def row(metric, results, window=WINDOW_ALL, backbone=None):
            v, n = fraction_satisfied(results)
            out = base | dict(metric=metric, value=float("nan") if v is None else v, stderr=None, n=n,
                              higher_is_better=True, window=window, backbone=backbone or self.backbone())
            if v is None:
                reasons = sorted({r.reason for r in results if r.reason}) or ["no assertion to check"]
                out |= dict(status="unavailable", reason="; ".join(reasons))
            return out

        rows = [row(self.metric, self.results)]
        for checker in (MEASURED, "semantic"):
            sub = [r for r in self.results if r.assertion.checker == checker]
            if sub:
                rows.append(row(f"{self.metric}_{checker}", sub, backbone=self.backbone(checker)))
        c = self.counts()
        rows.append(base | dict(metric=f"{self.metric}_unavailable", value=float(c["unavailable"]), stderr=None,
                                n=len(self.results), higher_is_better=False, window=WINDOW_ALL,
                                backbone=self.backbone()))
        for label, _, _ in self.windows:
            rows.append(row(self.metric, [r for r in self.window_results if r.window == label], window=label))
        return rows


ASSERTION_COLUMNS = ["clip_id", "window", "assertion_id", "kind", "value", "negated", "checker", "source", "text",
                     "start_s", "end_s", "status", "measured", "threshold", "reason"]


def write_assertions_parquet(results: list[AdherenceResult], path: str | Path, failed_only: bool = True,
                             metadata: dict | None = None) -> Path:
    """The assertions of many clips in one Parquet file (by default only those not satisfied)."""
    from kling.atomic import write_parquet_atomic

    frames = [r.failed_frame() if failed_only else r.assertions_frame() for r in results]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ASSERTION_COLUMNS)
    df = df.astype({"negated": bool, "start_s": float, "end_s": float, "measured": float, "threshold": float})
    meta = {"protocol_version": results[0].protocol_version if results else PROTOCOL_NAME} | (metadata or {})
    return write_parquet_atomic(df, path, metadata=meta)


# --------------------------------------------------------------------------------------------- evaluation


def _negate(status: str) -> str:
    return {"satisfied": "failed", "failed": "satisfied"}.get(status, status)


def _measured(sig: measured.VideoSignals, a: Assertion, span, window=WINDOW_ALL) -> AssertionResult:
    c = measured.check(sig, a.kind, a.value, *span)
    status = _negate(c.status) if a.negated else c.status
    return AssertionResult(a, status, span[0], span[1], c.value, c.threshold, c.reason, window)


def _frames_at(video, indices: set[int], fps: float) -> dict[int, np.ndarray]:
    from kling.io.decode import iter_frames

    out = {}
    if not indices:
        return out
    last = max(indices)
    for chunk in iter_frames(video, fps=fps):
        for k in range(len(chunk.frames)):
            if chunk.start + k in indices:
                out[chunk.start + k] = chunk.frames[k].copy()
        if chunk.start + len(chunk.frames) > last:
            break
    return out


def resolve_assertions(instruction: str | None = None, case: str | Path | None = None,
                       assertions: list[Assertion] | None = None,
                       judge: JudgeClient | None = None) -> tuple[list[Assertion], str, str | None]:
    """(assertions, parser used, note): explicit > case file > language model > rules."""
    if assertions is not None:
        return list(assertions), "explicit", None
    if case is not None:
        c = load_case(case)
        if c["assertions"]:
            return c["assertions"], c["source"] if c["source"] == "explicit" else "storyline", None
        instruction = c["instruction"]
    if not instruction:
        return [], "none", "no instruction"
    note = None
    if judge is not None:
        parsed, why = parse_instruction_llm(instruction, judge)
        if parsed:
            return parsed, "llm", None
        note = f"language model parse failed ({why}); used the rule parser"
    return parse_instruction(instruction), "rules", note


def evaluate_adherence(
    video: str | Path,
    instruction: str | None = None,
    *,
    case: str | Path | None = None,
    assertions: list[Assertion] | None = None,
    judge_url: str | None = None,
    judge_model: str | None = None,
    judge_timeout_s: float = 60.0,
    judge_frames: int = 4,
    llm_parse: bool = True,
    window_s: float = 10.0,
    face_tracks: pd.DataFrame | None = None,
    detector: str = "auto",
    signals: measured.VideoSignals | None = None,
    clip_id: str | None = None,
    metric: str = "adherence",
) -> AdherenceResult:
    """Check a video against its instruction / case. Bad media raises kling.io.errors.MediaError."""
    from eval.identity.csim import window_edges

    clip_id = clip_id or Path(video).stem
    judge = JudgeClient(judge_url, judge_model, timeout_s=judge_timeout_s) if judge_url and judge_model else None
    items, parser, note = resolve_assertions(instruction, case, assertions, judge if llm_parse else None)
    if signals is None:
        signals = measured.video_signals(video, face_tracks=face_tracks, detector=detector)
    proto = {"version": f"{PROTOCOL_NAME}/{measured.THRESHOLDS['version']}/w{window_s:g}", "window_s": window_s,
             "thresholds": measured.THRESHOLDS, "judge": judge.info() if judge else None, "judge_frames": judge_frames,
             "parser": parser, "parser_note": note, "detector": detector if isinstance(detector, str) else
             getattr(detector, "name", "custom")}
    if not items:
        return AdherenceResult("unavailable", f"no checkable assertion ({note or 'nothing in the vocabulary'})",
                               clip_id, proto, metric=metric)
    dur = signals.duration_s
    fps = signals.fps

    # Semantic assertions: one judge call each, on frames fetched in a single streaming pass.
    semantic = [a for a in items if a.checker != MEASURED]
    times = {a.id: sample_times(*a.span(dur), judge_frames) for a in semantic}
    wanted = {min(signals.n_frames - 1, int(t * fps)) for ts in times.values() for t in ts} if judge else set()
    frames = _frames_at(video, wanted, fps) if wanted else {}

    results: list[AssertionResult] = []
    for a in items:
        span = a.span(dur)
        if a.checker == MEASURED:
            results.append(_measured(signals, a, span))
            continue
        if judge is None:
            results.append(AssertionResult(a, "unavailable", *span, reason="no judge endpoint configured"))
            continue
        shown = [frames[i] for i in (min(signals.n_frames - 1, int(t * fps)) for t in times[a.id]) if i in frames]
        ans = judge.ask(question_for(a.kind, a.value), shown, span)
        status = {"yes": "satisfied", "no": "failed"}.get(ans.status, "unavailable")
        status = _negate(status) if a.negated else status
        results.append(AssertionResult(a, status, *span, reason=ans.reason or (f"judge: {ans.raw}" if ans.raw else None)))

    windows, window_results = [], []
    for w0, w1 in window_edges(signals.n_frames, fps, window_s):
        a_s, b_s = w0 / fps, w1 / fps
        label = f"{a_s:g}-{b_s:g}s"
        windows.append((label, a_s, b_s))
        for r in results:
            lo, hi = max(r.start_s, a_s), min(r.end_s, b_s)
            if hi <= lo and not (r.start_s == r.end_s and a_s <= r.start_s < b_s):
                continue
            if r.assertion.checker == MEASURED and not r.assertion.is_event and hi - lo >= MIN_WINDOW_SPAN_S:
                window_results.append(_measured(signals, r.assertion, (lo, hi), label))
            else:
                window_results.append(AssertionResult(r.assertion, r.status, r.start_s, r.end_s, r.value,
                                                      r.threshold, r.reason, label))
    res = AdherenceResult("ok", None, clip_id, proto, results, window_results, windows, metric)
    if res.score is None:
        res.status, res.reason = "unavailable", "every assertion is unavailable: " + "; ".join(
            sorted({r.reason or "?" for r in results}))
    return res


def aggregate(results: list[AdherenceResult]) -> list[dict]:
    """Benchmark-level rows: mean clip adherence with a bootstrap standard error, per protocol version."""
    from eval.identity.csim import AGGREGATE, bootstrap_mean

    groups: dict[str, list[AdherenceResult]] = {}
    for r in results:
        groups.setdefault(r.protocol_version, []).append(r)
    rows = []
    for version, rs in groups.items():
        ok = [r for r in rs if r.status == "ok"]
        backbone = ok[0].backbone() if ok else rs[0].backbone()
        base = dict(clip_id=AGGREGATE, window=WINDOW_ALL, backbone=backbone, backbone_sha256=None,
                    protocol_version=version, status="ok" if ok else "unavailable",
                    reason=None if ok else (rs[0].reason or "no clip scored"))
        mean, se = bootstrap_mean([r.score for r in ok])
        rows.append(base | dict(metric="adherence", value=mean, stderr=se, n=len(ok), higher_is_better=True))
        rows.append(base | dict(metric="clips_unavailable", value=float(len(rs) - len(ok)), stderr=None,
                                n=len(rs), higher_is_better=False))
    return rows
