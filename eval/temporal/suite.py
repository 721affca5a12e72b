"""One system's videos against a reference set: FID, FVD, their per-window values and drift, and each clip's
sharpness / appearance / transition figures, from ONE decode per video (kling.io.frames.decode_once). This is
the plain function a Dagster asset maps over a (system, benchmark) partition; it returns partial
leaderboard rows (eval.leaderboard.schema.complete_rows adds the run fields).

A backbone whose weights are missing gives its rows ``unavailable`` with the reason; the other metrics
still run. Reference features come from the content-addressed cache after the first system, so a second
system costs only its own videos.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.fid.cache import FeatureCache
from eval.fid.result import AGGREGATE
from eval.temporal.videoset import VideoSet
from kling.clock import FPS

log = logging.getLogger(__name__)


@dataclass
class SuiteConfig:
    window_s: float = 10.0
    fid_weights: str | None = None
    fvd_weights: str | None = None
    resize: str = "bilinear"
    frame_stride: int = 5
    clip_len: int = 16
    clip_stride: int = 16
    max_clips: int | None = None
    segment_s: float | None = None  # known sub-clip length of the cascade (stitch positions)
    n_boot: int = 200
    metrics: tuple[str, ...] = ("fid", "fvd", "drift")


@dataclass
class _Backbones:
    fid: object | None = None
    fvd: object | None = None
    unavailable: dict = field(default_factory=dict)  # metric -> (reason, backbone, protocol)


def _load(cfg: SuiteConfig) -> _Backbones:
    from eval.fid import features as fidf
    from eval.fid.fid import protocol as fid_protocol
    from eval.fid.inception import BACKBONE as FID_BB
    from eval.fvd import fvd as fvdm
    from kling.weights import WeightsUnavailable

    b = _Backbones()
    if "fid" in cfg.metrics:
        try:
            b.fid = fidf.load_extractor(cfg.fid_weights, resize=cfg.resize)
        except WeightsUnavailable as exc:
            b.unavailable["fid"] = (f"{exc.reason} (fetch it with: {exc.fetch_command})", FID_BB,
                                    fid_protocol(cfg.resize, cfg.frame_stride))
    if "fvd" in cfg.metrics:
        try:
            b.fvd = fvdm.load_extractor(cfg.fvd_weights)
        except WeightsUnavailable as exc:
            b.unavailable["fvd"] = (f"{exc.reason} (fetch it with: {exc.fetch_command})", fvdm.BACKBONE,
                                    fvdm.protocol(cfg.clip_len, cfg.clip_stride, cfg.max_clips))
    return b


class DistributionSuite:
    """The distribution metrics of one system, fed one generated video at a time.

    ``consumers(video)`` gives the frame consumers of a generated video (keys prefixed ``dist.``) to put in
    that video's single decode beside any other metric's (kling.io.frames.decode_once); ``add`` takes that
    decode's results, ``skip`` records a video that could not be read; ``rows`` decodes the reference set
    (through the feature cache) and computes every figure.

    Mergeable: suites of the same config and backbones that each saw some of the videos combine with
    ``merge`` into the suite that saw all of them; ``rank`` (the case's position in the benchmark) fixes
    the order features are pooled in, so the merged figures equal one pass bit for bit (eval.temporal.videoset)."""

    PREFIX = "dist."

    def __init__(self, config: SuiteConfig | None = None, cache: FeatureCache | None = None):
        self.cfg = config or SuiteConfig()
        self.cache = cache or FeatureCache()
        self.b = _load(self.cfg)
        self.gen = VideoSet()  # video -> {"fid": VideoFeatures, "fvd": VideoClips, "stats": FrameStats}
        self.skipped = VideoSet()  # video -> skip record

    def _consumers(self, video: Path, with_stats: bool) -> dict:
        from eval.fid.sources import FIDFrameConsumer
        from eval.fvd.fvd import FVDClipConsumer
        from eval.temporal.framestats import FrameStatsConsumer

        b, cfg, c = self.b, self.cfg, {}
        if b.fid is not None:
            c["fid"] = FIDFrameConsumer(video, b.fid, self.cache, cfg.frame_stride)
        if b.fvd is not None:
            c["fvd"] = FVDClipConsumer(video, b.fvd, self.cache, cfg.clip_len, cfg.clip_stride, cfg.max_clips)
        if with_stats:
            c["stats"] = FrameStatsConsumer(FPS, cfg.window_s)
        return c

    def consumers(self, video: str | Path) -> dict:
        return {self.PREFIX + k: c for k, c in self._consumers(Path(video), "drift" in self.cfg.metrics).items()}

    def add(self, video: str | Path, results: dict, rank: int | None = None) -> None:
        n = len(self.PREFIX)
        self.gen.add(str(video), {k[n:]: v for k, v in results.items() if k.startswith(self.PREFIX)}, rank)

    def skip(self, video: str | Path, exc: Exception, rank: int | None = None) -> None:
        log.warning("skipping %s: %s", video, exc)
        self.skipped.add(str(video), _skip_record(video, exc), rank)

    def identity(self) -> tuple:
        """What must agree for two suites' results to pool: the config and the backbone files."""
        b = self.b
        return (self.cfg, getattr(b.fid, "sha256", None), getattr(b.fvd, "sha256", None), sorted(b.unavailable))

    def merge(self, other: "DistributionSuite") -> "DistributionSuite":
        """Fold another worker's suite into this one (returns self); it must have seen other videos."""
        if other.identity() != self.identity():
            raise ValueError(f"cannot merge distribution suites of different configs or backbones: "
                             f"{self.identity()} vs {other.identity()}")
        self.gen.merge(other.gen)
        self.skipped.merge(other.skipped)
        return self

    def _references(self, videos: list[Path]) -> tuple[dict[str, dict], list[dict]]:
        from kling.io.frames import decode_once
        from kling.io.errors import MediaError

        out, skipped = {}, []
        for v in videos:
            try:
                out[str(v)] = decode_once(v, self._consumers(v, False))
            except MediaError as exc:
                log.warning("skipping %s: %s", v, exc)
                skipped.append(_skip_record(v, exc))
        return out, skipped

    def rows(self, ref_videos: list[str | Path]) -> list[dict]:
        """Partial leaderboard rows: whole-set and per-window FID/FVD with drift figures, and per clip +
        aggregate sharpness drift, appearance consistency and transition scores."""
        b = self.b
        ref, skipped_ref = ({}, [])
        if b.fid is not None or b.fvd is not None:
            ref, skipped_ref = self._references([Path(v) for v in ref_videos])
        return _rows(self.cfg, b, ref, dict(self.gen.items()), skipped_ref + self.skipped.values())


def _skip_record(video: str | Path, exc: Exception) -> dict:
    return {"path": str(video), "reason": f"{getattr(exc, 'reason', 'unreadable')}: {exc}"}


def evaluate_system(ref_videos: list[str | Path], gen_videos: list[str | Path], config: SuiteConfig | None = None,
                    cache: FeatureCache | None = None) -> list[dict]:
    """Partial leaderboard rows for one system's videos against a reference set (see DistributionSuite), one
    decode per video."""
    return accumulate(gen_videos, DistributionSuite(config, cache)).rows(ref_videos)


def accumulate(gen_videos: list[str | Path], suite: DistributionSuite, first_rank: int = 0) -> DistributionSuite:
    """Decode each of `gen_videos` once into `suite` (ranks ``first_rank``, ``first_rank + 1``, ...: a
    worker given videos i..j of the list passes ``first_rank=i`` so its suite merges with the others')."""
    from kling.io.frames import decode_once
    from kling.io.errors import MediaError

    for rank, v in enumerate(gen_videos, first_rank):
        try:
            suite.add(v, decode_once(v, suite.consumers(v)), rank)
        except MediaError as exc:
            suite.skip(v, exc, rank)
    return suite


def _rows(cfg: SuiteConfig, b: _Backbones, ref: dict[str, dict], gen: dict[str, dict], skipped: list[dict]
          ) -> list[dict]:
    from eval.fid.fid import fid_of_features, protocol as fid_protocol
    from eval.fid.result import unavailable
    from eval.fvd.fvd import fvd_of_features, protocol as fvd_protocol
    from eval.temporal.drift import (BACKBONE, DriftResult, appearance_consistency, drift_figure, drift_rows,
                                     protocol as drift_protocol, window_labels, window_values)
    from eval.identity.csim import window_edges
    from eval.temporal.setwise import window_rows, windowed_distance
    from eval.temporal.transitions import boundaries_every, given_joins, score_transitions

    rows: list[dict] = []
    for metric, (reason, bb, proto) in b.unavailable.items():
        rows += unavailable(metric, reason, bb, proto).to_rows()
    for metric, ext, of_features, proto in (
        ("fid", b.fid, fid_of_features, fid_protocol(cfg.resize, cfg.frame_stride)),
        ("fvd", b.fvd, fvd_of_features, fvd_protocol(cfg.clip_len, cfg.clip_stride, cfg.max_clips)),
    ):
        if ext is None:
            continue
        ref_f = [r[metric].features for r in ref.values() if len(r[metric].features)]
        gen_items = [g[metric] for g in gen.values()]
        ref_x = np.concatenate(ref_f) if ref_f else np.zeros((0, ext.dim), np.float32)
        gen_f = [g.features for g in gen_items if len(g.features)]
        gen_x = np.concatenate(gen_f) if gen_f else np.zeros((0, ext.dim), np.float32)
        rows += of_features(ref_x, gen_x, ext, proto, skipped).to_rows()
        if len(ref_x) >= 2 and gen_items:
            fig, counts = windowed_distance(metric, ref_x, gen_items, cfg.window_s, n_boot=cfg.n_boot)
            rows += window_rows(fig, counts, ext.name, ext.sha256, f"{proto['version']}/w{cfg.window_s:g}")

    if "drift" in cfg.metrics and gen:
        proto = drift_protocol(cfg.window_s)
        per_video = []
        for path, res in gen.items():
            st = res["stats"]
            edges = window_edges(st.n_frames, FPS, cfg.window_s)
            sharp = window_values(st.sharpness, st.n_frames, cfg.window_s)
            per_video.append(sharp)
            fig = drift_figure("sharpness", [sharp], cfg.window_s)
            fig.windows = window_labels(edges)
            bounds = given_joins(path)
            if bounds is None and cfg.segment_s:
                bounds = boundaries_every(st.n_frames, cfg.segment_s)
            dr = DriftResult(Path(path).stem, proto, st.n_frames, window_labels(edges), fig,
                             appearance_consistency(st), score_transitions(st.change, bounds))
            rows += dr.to_rows()
        agg = drift_figure("sharpness", per_video, cfg.window_s)
        base = dict(clip_id=AGGREGATE, backbone=BACKBONE, backbone_sha256=None,
                    protocol_version=proto["version"], status="ok", reason=None)
        rows += drift_rows(agg, base)
        for label, v in zip(agg.windows, agg.window_means):
            rows.append(base | dict(metric="sharpness", value=float("nan") if v is None else v, stderr=None,
                                    n=len(per_video), higher_is_better=True, window=label))
    return rows
