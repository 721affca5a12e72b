"""Score one system on one benchmark with every configured metric: the unit of an evaluation run.

Per case, the shots and face tracks come from one decode and are shared by lip sync, identity and adherence;
a second decode feeds every metric that reads frames (sync, identity, FID, FVD, drift) in the same pass.
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
    from kling.perception.sync import evaluator_for

    return [(name, evaluator_for(name, settings.sync_expert_dir if name == "expert" else None))
            for name in settings.sync_backbones]


def _identity_backbones(settings: EvalSettings) -> list[Any]:
    from eval.identity.backbones import BackboneUnavailable, load_backbone

    out = []
    for name in settings.identity_backbones:
        try:
            out.append(load_backbone(name))
        except BackboneUnavailable:
            out.append(name)  # evaluate_identity turns the name into `unavailable` rows with the reason
    return out


def evaluate_case(video: Path, case, sync_evals, id_backbones, detector, settings: EvalSettings,
                  distribution=None):
    """Partial leaderboard rows of one case's video (all metrics, all backbones), and its adherence result
    (whose failed assertions are kept beside the run) or None.

    Two decodes: shots and face tracks in one, then lip sync (every backbone), identity (every backbone) and
    the frames `distribution` (an eval.temporal.suite.DistributionSuite) needs, all fed from the other
    (kling.io.frames.decode_once); the audio track is read once for every sync backbone."""
    from eval.adherence.score import evaluate_adherence
    from kling.io.frames import decode_once
    from eval.identity.evaluate import identity_consumer, shot_aware_tracks
    from kling.perception.sync.audio import SAMPLE_RATE
    from kling.io.audio import read_audio

    tracks = shot_aware_tracks(video, detector)
    scored = any(ev.backbone is not None for _, ev in sync_evals)  # unavailable backbones need no audio
    samples = read_audio(video, sample_rate=SAMPLE_RATE) if scored else None
    refs = [str(r) for r in case.reference]
    consumers = {f"sync.{name}": ev.consumer(video, tracks, samples) for name, ev in sync_evals}
    consumers |= {f"identity.{i}": identity_consumer(video, refs, bb, detector=detector, face_tracks=tracks,
                                                     clip_id=case.id)
                  for i, bb in enumerate(id_backbones)}
    if distribution is not None:
        consumers |= distribution.consumers(video)
    out = decode_once(video, consumers, chunk_size=32)
    if distribution is not None:
        distribution.add(video, out)
    rows: list[dict] = []
    for name, _ in sync_evals:
        rows += out[f"sync.{name}"].leaderboard_rows(clip_id=case.id)
    for i in range(len(id_backbones)):
        rows += out[f"identity.{i}"].to_rows()
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
    from kling.perception.faces.tracks import FaceTrackConfig, detector_for

    report = check_system(system, benchmark)
    rows: list[dict] = list(report.to_rows())
    adherence = []
    sync_evals = _sync_evaluators(settings)
    id_backbones = _identity_backbones(settings)
    detector = detector_for(FaceTrackConfig(detector=settings.detector))
    distribution = _distribution_suite(benchmark, report, settings)
    for out in report.cases:
        if out.status != "ok":
            continue  # reported by the output_ok rows of check_system
        case = benchmark.case(out.case_id)
        try:
            case_rows, case_adherence = evaluate_case(Path(out.path), case, sync_evals, id_backbones, detector,
                                                      settings, distribution)
            rows += case_rows
            adherence += [case_adherence] if case_adherence is not None else []
        except MediaError as exc:
            log.warning("%s/%s: %s", system.name, case.id, exc)
            if distribution is not None:
                distribution.skip(out.path, exc)
            rows.append({"clip_id": case.id, "metric": "evaluated", "value": 0.0, "higher_is_better": True,
                         "backbone": "kling.io", "protocol_version": "suite/1", "status": "unavailable",
                         "reason": f"{exc.reason}: {exc}"})
        if progress:
            progress(case.id)
    if distribution is not None:
        rows += distribution.rows(_ground_truth(benchmark))
    return SystemEvaluation(complete_rows(rows, ctx), adherence)


def _ground_truth(benchmark: Benchmark) -> list:
    return [c.ground_truth for c in benchmark.cases if c.ground_truth is not None]


def _distribution_suite(benchmark: Benchmark, report, settings: EvalSettings):
    """FID and FVD of the system's videos against the benchmark's ground-truth videos (whole set and per
    time window, with drift), plus per-clip sharpness drift, appearance consistency and transitions; None
    when the settings leave them out or the system has no readable video."""
    from eval.temporal.suite import DistributionSuite, SuiteConfig

    if not settings.distribution or not any(o.status == "ok" for o in report.cases):
        return None
    metrics = ("fid", "fvd", "drift") if _ground_truth(benchmark) else ("drift",)
    return DistributionSuite(SuiteConfig(window_s=settings.window_s, metrics=metrics))
