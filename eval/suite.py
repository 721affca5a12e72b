"""Score one system on one benchmark with every configured metric: the unit of an evaluation run.

Per case, the face tracks are computed once (shot-aware) and shared by lip sync, identity and adherence.
Every metric is attempted with every configured backbone: a backbone whose weights are missing gives
`unavailable` rows carrying the reason and the fetch command, never silently nothing, and numbers from
different backbones are kept apart by the backbone columns. Missing or broken outputs of the system are
reported per case by eval.systems.check_system and never silently dropped.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa

from eval.benchmarks import Benchmark
from eval.leaderboard.schema import RunContext, complete_rows
from eval.systems import System, check_system
from kling.hashing import config_hash
from kling.io.errors import MediaError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Which metrics and backbones a run uses (hashed into every row's config_hash)."""

    sync_backbones: tuple[str, ...] = ("syncnet_v2", "expert")  # "expert" = the self-trained sync expert
    sync_expert_dir: str | None = None  # checkpoint folder of the trained expert (demo profile)
    identity_backbones: tuple[str, ...] = ("arcface", "dlib")
    adherence: bool = True
    distribution: bool = True  # FID / FVD against the benchmark's ground truth, drift and transitions
    window_s: float = 10.0
    judge_url: str | None = None
    judge_model: str | None = None
    detector: str = "auto"

    @property
    def hash(self) -> str:
        return config_hash(self)


def _sync_evaluators(settings: EvalSettings) -> list[tuple[str, Any]]:
    from eval.sync.pipeline import SyncEvaluator

    out = []
    for name in settings.sync_backbones:
        if name == "syncnet_v2":
            out.append((name, SyncEvaluator.official()))
        elif name == "expert":
            from eval.sync.expert import expert_evaluator

            out.append((name, expert_evaluator(settings.sync_expert_dir or "<no checkpoint: materialize training/sync_expert>")))
        else:
            raise ValueError(f"unknown sync backbone {name!r}")
    return out


def _identity_backbones(settings: EvalSettings) -> list[Any]:
    from eval.identity.backbones import BackboneUnavailable, load_backbone

    out = []
    for name in settings.identity_backbones:
        try:
            out.append(load_backbone(name))
        except BackboneUnavailable:
            out.append(name)  # evaluate_identity turns the name into `unavailable` rows with the reason
    return out


def evaluate_case(video: Path, case, sync_evals, id_backbones, detector, settings: EvalSettings):
    """Partial leaderboard rows of one case's video (all metrics, all backbones), and its adherence result
    (whose failed assertions are kept beside the run) or None."""
    from eval.adherence.score import evaluate_adherence
    from eval.identity.evaluate import evaluate_identity, shot_aware_tracks

    tracks = shot_aware_tracks(video, detector)
    rows: list[dict] = []
    for _, ev in sync_evals:
        rows += ev.evaluate_video(video, tracks=tracks).leaderboard_rows(clip_id=case.id)
    refs = [str(r) for r in case.reference]
    for bb in id_backbones:
        rows += evaluate_identity(video, refs, bb, detector=detector, face_tracks=tracks, clip_id=case.id).to_rows()
    adherence = None
    if settings.adherence and case.instruction:
        adherence = evaluate_adherence(video, case.instruction, face_tracks=tracks, detector=detector, clip_id=case.id,
                                       judge_url=settings.judge_url, judge_model=settings.judge_model, llm_parse=False)
        rows += adherence.to_rows()
    return rows, adherence


@dataclasses.dataclass
class SystemEvaluation:
    rows: pa.Table  # the leaderboard schema, per clip (aggregates are computed at leaderboard time)
    adherence: list  # eval.adherence.score.AdherenceResult per case: their failed assertions go to Parquet


def evaluate_system(benchmark: Benchmark, system: System, settings: EvalSettings, ctx: RunContext,
                    progress=None) -> SystemEvaluation:
    """Every case of `benchmark` for `system`, every metric and backbone."""
    from kling.curate.face_tracks import FaceTrackConfig, detector_for

    report = check_system(system, benchmark)
    rows: list[dict] = list(report.to_rows())
    adherence = []
    sync_evals = _sync_evaluators(settings)
    id_backbones = _identity_backbones(settings)
    detector = detector_for(FaceTrackConfig(detector=settings.detector))
    for out in report.cases:
        if out.status != "ok":
            continue  # reported by the output_ok rows of check_system
        case = benchmark.case(out.case_id)
        try:
            case_rows, case_adherence = evaluate_case(Path(out.path), case, sync_evals, id_backbones, detector, settings)
            rows += case_rows
            adherence += [case_adherence] if case_adherence is not None else []
        except MediaError as exc:
            log.warning("%s/%s: %s", system.name, case.id, exc)
            rows.append({"clip_id": case.id, "metric": "evaluated", "value": 0.0, "higher_is_better": True,
                         "backbone": "kling.io", "protocol_version": "suite/1", "status": "unavailable",
                         "reason": f"{exc.reason}: {exc}"})
        if progress:
            progress(case.id)
    if settings.distribution:
        rows += distribution_rows(benchmark, report, settings)
    return SystemEvaluation(complete_rows(rows, ctx), adherence)


def distribution_rows(benchmark: Benchmark, report, settings: EvalSettings) -> list[dict]:
    """FID and FVD of the system's videos against the benchmark's ground-truth videos (whole set and per
    time window, with drift), plus per-clip sharpness drift, appearance consistency and transitions: one
    decode per video (eval.temporal.suite)."""
    from eval.temporal.suite import SuiteConfig, evaluate_system as temporal_rows

    refs = [c.ground_truth for c in benchmark.cases if c.ground_truth is not None]
    gens = [Path(o.path) for o in report.cases if o.status == "ok"]
    if not gens:
        return []
    metrics = ("fid", "fvd", "drift") if refs else ("drift",)
    return temporal_rows(refs, gens, SuiteConfig(window_s=settings.window_s, metrics=metrics))
