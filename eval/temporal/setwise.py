"""FID / FVD per time window: the set of all generated videos' k-th windows against the whole reference set.

A frame (FID) or clip (FVD, by its first frame) belongs to window k of its own video (csim's window edges);
videos shorter than k windows do not contribute to window k. Each window's distance uses every feature of
that window; its drift (slope per minute over window centres, ratio last / first) gets a 95% percentile
bootstrap interval over videos (``n_boot`` resamples of the generated videos with replacement, seed 0;
the reference set is fixed). The features come from the shared cache, so this adds no decoding.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from eval.fid.frechet import frechet_distance_features
from eval.identity.csim import window_edges
from eval.temporal.drift import WINDOW_S, DriftFigure, slope_and_ratio
from kling.clock import FPS

N_BOOT_SET = 200  # each resample recomputes every window's distance


class IndexedFeatures(Protocol):  # eval.fid.sources.VideoFeatures, eval.fvd.fvd.VideoClips
    features: np.ndarray
    index: np.ndarray
    n_frames: int


def _per_window(videos: list[IndexedFeatures], window_s: float, fps: float) -> list[list[np.ndarray]]:
    """per_window[k][v]: video v's features in its window k (empty arrays where it has none)."""
    split: list[list[np.ndarray]] = []
    for vi, v in enumerate(videos):
        edges = window_edges(v.n_frames, fps, window_s)
        for k, (a, b) in enumerate(edges):
            while len(split) <= k:
                split.append([np.zeros((0, v.features.shape[1]), np.float32) for _ in videos])
            split[k][vi] = v.features[(v.index >= a) & (v.index < b)]
    return split


def windowed_distance(
    metric: str,
    ref: np.ndarray,
    gen_videos: list[IndexedFeatures],
    window_s: float = WINDOW_S,
    fps: float = FPS,
    n_boot: int = N_BOOT_SET,
    seed: int = 0,
    distance: Callable[[np.ndarray, np.ndarray], float] = frechet_distance_features,
    min_samples: int = 2,
) -> tuple[DriftFigure, list[int]]:
    """(DriftFigure of the per-window distance, samples per window). Lower is better."""
    split = _per_window(list(gen_videos), window_s, fps)
    n_w = len(split)

    def values(pick: np.ndarray) -> list[float | None]:
        out = []
        for k in range(n_w):
            arrs = [split[k][i] for i in pick if len(split[k][i])]
            x = np.concatenate(arrs) if arrs else np.zeros((0, ref.shape[1]))
            out.append(distance(ref, x) if len(x) >= min_samples and len(ref) >= min_samples else None)
        return out

    n_v = len(gen_videos)
    point = values(np.arange(n_v))
    counts = [int(sum(len(a) for a in split[k])) for k in range(n_w)]
    centres = (np.arange(n_w) + 0.5) * window_s / 60.0
    slope, ratio = slope_and_ratio(point, centres)
    labels = [f"{k * window_s:g}-{(k + 1) * window_s:g}s" for k in range(n_w)]
    fig = DriftFigure(metric, False, window_s, labels, point, slope, None, ratio, None, n_videos=n_v)
    if n_v >= 2 and n_boot > 0 and slope is not None:
        rng = np.random.default_rng(seed)
        slopes, ratios = [], []
        for _ in range(n_boot):
            s, r = slope_and_ratio(values(rng.integers(0, n_v, n_v)), centres)
            slopes.append(np.nan if s is None else s)
            ratios.append(np.nan if r is None else r)
        slopes, ratios = np.asarray(slopes), np.asarray(ratios)
        if np.isfinite(slopes).sum() >= 2:
            fig.slope_ci = tuple(float(x) for x in np.nanpercentile(slopes, [2.5, 97.5]))
        if np.isfinite(ratios).sum() >= 2:
            fig.ratio_ci = tuple(float(x) for x in np.nanpercentile(ratios, [2.5, 97.5]))
    return fig, counts


def window_rows(fig: DriftFigure, counts: list[int], backbone: str, backbone_sha256: str | None,
                protocol_version: str) -> list[dict]:
    """Partial leaderboard rows: the metric per window (aggregate over clips) plus its drift figures."""
    from eval.fid.result import AGGREGATE
    from eval.temporal.drift import drift_rows

    base = dict(clip_id=AGGREGATE, backbone=backbone, backbone_sha256=backbone_sha256,
                protocol_version=protocol_version, status="ok", reason=None)
    rows = []
    for label, v, n in zip(fig.windows, fig.window_means, counts):
        rows.append(base | dict(metric=fig.metric, value=float("nan") if v is None else float(v), stderr=None, n=n,
                                higher_is_better=False, window=label,
                                status="ok" if v is not None else "unavailable",
                                reason=None if v is not None else "fewer than 2 samples in this window"))
    return rows + drift_rows(fig, base)
