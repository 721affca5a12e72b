"""Score one system on one benchmark with every configured metric: the unit of an evaluation run.

Per case, the shots and face tracks come from one decode and are shared by lip sync, identity, adherence and
LMD; a second decode feeds every metric that reads frames (sync, identity, FID, FVD, drift, PSNR/SSIM against
the ground truth) in the same pass.
Every metric is attempted with every configured backbone: a backbone whose weights are missing gives
`unavailable` rows carrying the reason and the fetch command, never silently nothing, and numbers from
different backbones are kept apart by the backbone columns. Missing or broken outputs of the system are
reported per case by eval.systems.check_system and never silently dropped.

A run can be split by cases across workers: each evaluates its share (`evaluate_cases`), the partials merge
(`merge_partials`) and `finish` gives exactly the rows one worker would have written (the runtime that
places the workers is not here).
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
    fidelity: bool = True  # PSNR, SSIM and LMD against the case's ground truth (eval.fidelity), where it has one

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
                  distribution=None, rank: int | None = None, storyline: dict | None = None):
    """Partial leaderboard rows of one case's video (all metrics, all backbones), and its adherence results
    (whose failed assertions are kept beside the run): against the case's instruction, and against the
    director's `storyline` of the case (kling.director.Storyline as a dict: each shot's head motion, camera,
    mouth and emotion over its span) as the metric `storyline_adherence`.

    Two decodes: shots and face tracks in one, then lip sync (every backbone), identity (every backbone), the
    frames `distribution` (an eval.temporal.suite.DistributionSuite) needs and PSNR/SSIM, all fed from the
    other (kling.io.frames.decode_once); the audio track is read once for every sync backbone. `rank` (the
    case's position in the benchmark) orders the video's place in `distribution`'s pooled features.

    Where the case has a ground-truth video (`case.ground_truth`; long cases may have none) and
    settings.fidelity is on: PSNR and SSIM read the ground truth alongside the second decode, and LMD compares
    the face tracks above with the ground truth's, which are tracked once per file and cached for every
    other system's run (eval.fidelity.truth_tracks)."""
    from eval.adherence import measured
    from eval.adherence.assertions import storyline_assertions
    from eval.adherence.score import evaluate_adherence
    from kling.io.frames import decode_once
    from eval.identity.evaluate import identity_consumer
    from kling.perception.faces.tracks import shot_aware_tracks
    from kling.clock import SAMPLE_RATE
    from kling.io.audio import read_audio
    from eval.fidelity.pixels import FidelityConsumer

    tracks = shot_aware_tracks(video, detector)  # the same table `kling eval sync/identity/adherence` compute
    scored = any(ev.backbone is not None for _, ev in sync_evals)  # unavailable backbones need no audio
    samples = read_audio(video, sample_rate=SAMPLE_RATE) if scored else None
    refs = [str(r) for r in case.reference]
    consumers = {f"sync.{name}": ev.consumer(video, tracks, samples) for name, ev in sync_evals}
    consumers |= {f"identity.{i}": identity_consumer(video, refs, bb, detector=detector, face_tracks=tracks,
                                                     clip_id=case.id)
                  for i, bb in enumerate(id_backbones)}
    if distribution is not None:
        consumers |= distribution.consumers(video)
    truth = case.ground_truth if settings.fidelity else None
    if truth is not None:
        consumers["fidelity.pixels"] = FidelityConsumer(truth)
    out = decode_once(video, consumers, chunk_size=32)
    if distribution is not None:
        distribution.add(video, out, rank)
    rows: list[dict] = []
    for name, _ in sync_evals:
        rows += out[f"sync.{name}"].leaderboard_rows(clip_id=case.id)
    for i in range(len(id_backbones)):
        rows += out[f"identity.{i}"].to_rows()
    if truth is not None:
        rows += out["fidelity.pixels"].to_rows(case.id)
        rows += _lmd_rows(tracks, truth, detector, case.id)
    adherence = []
    if settings.adherence and (case.instruction or storyline is not None):
        common = dict(judge_url=settings.judge_url, judge_model=settings.judge_model, llm_parse=False,
                      detector=detector, clip_id=case.id)
        signals = measured.video_signals(video, face_tracks=tracks, detector=detector)  # one pass for both
        if case.instruction:
            adherence.append(evaluate_adherence(video, case.instruction, signals=signals, **common))
        if storyline is not None:
            adherence.append(evaluate_adherence(video, assertions=storyline_assertions(storyline), signals=signals,
                                                metric="storyline_adherence", **common))
    for result in adherence:
        rows += result.to_rows()
    return rows, adherence


def _lmd_rows(tracks, truth: Path, detector, clip_id: str) -> list[dict]:
    """LMD of the case: its video's face tracks against the ground truth's (cached per file). A ground truth
    that cannot be read gives an `unavailable` row with the reason, not a failed case: the system's video
    was fine and its other rows stand."""
    from eval.fidelity.lmd import PROTOCOL_VERSION, backbone, lmd_rows_from_tracks
    from eval.fidelity.truth_tracks import truth_tracks

    try:
        return lmd_rows_from_tracks(tracks, truth_tracks(truth, detector), clip_id, detector)
    except (MediaError, OSError) as exc:
        name, sha = backbone(detector)
        why = f" ({exc.reason})" if isinstance(exc, MediaError) else ""
        return [{"clip_id": clip_id, "window": "all", "metric": metric, "value": None, "stderr": None, "n": 0,
                 "higher_is_better": hib, "backbone": name, "backbone_sha256": sha, "protocol_version": PROTOCOL_VERSION,
                 "status": "unavailable", "reason": f"ground truth {Path(truth).name} unreadable{why}: {exc}"}
                for metric, hib in (("lmd", False), ("lmd_face_rate", True))]


@dataclasses.dataclass
class SystemEvaluation:
    rows: pa.Table  # the leaderboard schema, per clip (aggregates are computed at leaderboard time)
    adherence: list  # eval.adherence.score.AdherenceResult per case and check: their failed assertions go to Parquet


@dataclasses.dataclass
class CaseEvaluation:
    """One case's share of a run: its output_ok row, its metric rows and its adherence results."""

    rank: int  # the case's position in the benchmark: merged results are put back in this order
    check: list[dict]
    rows: list[dict] = dataclasses.field(default_factory=list)
    adherence: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class PartialEvaluation:
    """Some of a benchmark's cases evaluated for one system: one worker's share of a run (`evaluate_cases`).

    Partials of disjoint case sets merge (`merge`, `merge_partials`) into what one worker evaluating all of
    them holds: per-case rows are per case and are put back in benchmark order; the set-level metrics (FID,
    FVD, their windows, drift across videos) pool per-video state in that same order
    (eval.temporal.suite.DistributionSuite.merge). `finish` then gives the single-worker run's rows, bit
    for bit. Per-video results (sync, identity, adherence) need no merge of their own."""

    benchmark: str
    system: str
    settings_hash: str
    cases: dict[str, CaseEvaluation]
    distribution: Any = None  # eval.temporal.suite.DistributionSuite; None while no case had a readable video

    def merge(self, other: "PartialEvaluation") -> "PartialEvaluation":
        """Fold `other` into this partial (returns self)."""
        mine, theirs = (self.benchmark, self.system, self.settings_hash), (other.benchmark, other.system, other.settings_hash)
        if mine != theirs:
            raise ValueError(f"cannot merge evaluations of different runs: {mine} vs {theirs}")
        both = self.cases.keys() & other.cases.keys()
        if both:
            raise ValueError(f"cases evaluated in both parts being merged: {sorted(both)}")
        self.cases.update(other.cases)
        if other.distribution is not None:
            self.distribution = (other.distribution if self.distribution is None
                                 else self.distribution.merge(other.distribution))
        return self

    def finish(self, benchmark: Benchmark, ctx: RunContext) -> SystemEvaluation:
        """The run's rows once every case of `benchmark` is in (the reference set is decoded here, once)."""
        missing = [c for c in benchmark.case_ids if c not in self.cases]
        if missing or benchmark.name != self.benchmark:
            raise ValueError(f"evaluation of {self.system} on {self.benchmark} lacks cases {missing} of "
                             f"benchmark {benchmark.name}")
        cases = sorted(self.cases.values(), key=lambda c: c.rank)
        rows = [r for c in cases for r in c.check] + [r for c in cases for r in c.rows]
        if self.distribution is not None:
            rows += self.distribution.rows(_ground_truth(benchmark))
        return SystemEvaluation(complete_rows(rows, ctx), [a for c in cases for a in c.adherence])


def merge_partials(parts: list[PartialEvaluation]) -> PartialEvaluation:
    """Workers' partials of one run folded into the first (which is returned); finish it for the rows."""
    if not parts:
        raise ValueError("nothing to merge")
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    return merged


def evaluate_system(benchmark: Benchmark, system: System, settings: EvalSettings, ctx: RunContext,
                    progress=None, storylines: dict[str, dict] | None = None, workers: int = 1) -> SystemEvaluation:
    """Every case of `benchmark` for `system`, every metric and backbone; `storylines` (case id -> the
    director's storyline) adds each case's storyline adherence. `workers` > 1 evaluates the cases in that many
    processes at one torch thread each: the same rows, but for a float sum that may round otherwise in its last
    bits (tests/eval/test_merge.py)."""
    if workers > 1 and len(benchmark.case_ids) > 1:
        part = _evaluate_in_processes(benchmark, system, settings, workers, progress, storylines)
    else:
        part = evaluate_cases(benchmark, system, settings, progress=progress, storylines=storylines)
    return part.finish(benchmark, ctx)


def _evaluate_in_processes(benchmark: Benchmark, system: System, settings: EvalSettings, workers: int, progress,
                           storylines: dict[str, dict] | None) -> PartialEvaluation:
    """The cases dealt into `workers` shares of about equal audio length (longest first, each to the lightest
    share: a 1-minute case is a share's bulk), one process per share (its models loaded once), merged in benchmark
    order. dlib's face descriptor and HOG detector, the bulk of a case, run on one core each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

    shares: list[list[str]] = [[] for _ in range(min(workers, len(benchmark.case_ids)))]
    load = [0.0] * len(shares)
    for c in sorted(benchmark.case_ids, key=lambda c: -(benchmark.case(c).duration_s or 1.0)):
        i = load.index(min(load))
        shares[i].append(c)
        load[i] += benchmark.case(c).duration_s or 1.0
    with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(1,)) as pool:
        tasks = {pool.submit(evaluate_cases, benchmark, system, settings, share, None, storylines): share
                 for share in shares}
        parts = []
        for done in as_completed(tasks):
            parts.append(done.result())
            for case in tasks[done] if progress else []:
                progress(case)
    return merge_partials(sorted(parts, key=lambda p: min(c.rank for c in p.cases.values())))


def evaluate_cases(benchmark: Benchmark, system: System, settings: EvalSettings, cases: list[str] | None = None,
                   progress=None, storylines: dict[str, dict] | None = None) -> PartialEvaluation:
    """`cases` (ids; default every case) of `benchmark` for `system`, every metric and backbone: a worker's
    share of a run, to merge with the other workers' (merge_partials) and finish."""
    from kling.perception.faces.detect import load_detector

    ranks = {c: i for i, c in enumerate(benchmark.case_ids)}
    ids = benchmark.case_ids if cases is None else list(dict.fromkeys(cases))
    report = check_system(system, dataclasses.replace(benchmark, cases=[benchmark.case(c) for c in ids]))
    part = PartialEvaluation(benchmark.name, system.name, settings.hash,
                             {o.case_id: CaseEvaluation(ranks[o.case_id], [row])
                              for o, row in zip(report.cases, report.to_rows())})
    sync_evals = _sync_evaluators(settings)
    id_backbones = _identity_backbones(settings)
    detector = load_detector(settings.detector)
    distribution = part.distribution = _distribution_suite(benchmark, report, settings)
    for out in report.cases:
        if out.status != "ok":
            continue  # reported by the output_ok rows of check_system
        case, done = benchmark.case(out.case_id), part.cases[out.case_id]
        try:
            done.rows, done.adherence = evaluate_case(Path(out.path), case, sync_evals, id_backbones, detector,
                                                      settings, distribution, done.rank, (storylines or {}).get(case.id))
        except MediaError as exc:
            log.warning("%s/%s: %s", system.name, case.id, exc)
            if distribution is not None:
                distribution.skip(out.path, exc, done.rank)
            done.rows = [{"clip_id": case.id, "metric": "evaluated", "value": 0.0, "higher_is_better": True,
                          "backbone": "kling.io", "protocol_version": "suite/1", "status": "unavailable",
                          "reason": f"{exc.reason}: {exc}"}]
        if progress:
            progress(case.id)
    return part


def _ground_truth(benchmark: Benchmark) -> list:
    return [c.ground_truth for c in benchmark.cases if c.ground_truth is not None]


def _distribution_suite(benchmark: Benchmark, report, settings: EvalSettings):
    """FID and FVD of the system's videos against the benchmark's ground-truth videos (whole set and per
    time window, with drift), plus per-clip sharpness drift, appearance consistency and transitions; None
    when the settings leave them out or none of the cases in `report` has a readable video (a worker's share
    may have none: the merge takes the other workers' suites)."""
    from eval.temporal.suite import DistributionSuite, SuiteConfig

    if not settings.distribution or not any(o.status == "ok" for o in report.cases):
        return None
    metrics = ("fid", "fvd", "drift") if _ground_truth(benchmark) else ("drift",)
    return DistributionSuite(SuiteConfig(window_s=settings.window_s, metrics=metrics))
