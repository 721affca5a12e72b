"""Long-video drift: every windowable metric per time window, and how it moves over time.

Protocol ``drift-v1`` (recorded in every row):

- windows: consecutive ``window_s`` spans of the 25 fps timeline (default 10 s); a trailing span shorter
  than half a window joins the previous one (eval.identity.csim.window_edges, shared with CSIM);
- per video and metric: the window values v_k at window centres t_k (minutes); **slope** = least-squares
  slope of v over t (units per minute), **ratio** = v_last / v_first;
- across videos: the mean slope and mean ratio, 95% confidence intervals by percentile bootstrap over videos
  (1000 resamples, seed 0); with one video, the slope's interval is the t-interval of its regression
  (>= 3 windows) and the ratio has none;
- set metrics (FID/FVD of the k-th windows of all videos against the reference set, eval.temporal.setwise):
  slope and ratio of the per-window values, intervals by bootstrap over videos.

Single-video figures here: sharpness (Laplacian variance, higher is sharper), appearance consistency
(correlation of window-mean thumbnails between windows far apart), transitions (eval.temporal.transitions).
Identity and sync windows come from their own metrics (IdentityResult.windows, or any per-frame series via
``window_values``) and go through ``drift_figure`` the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from eval.identity.csim import window_edges
from eval.temporal.framestats import FrameStats, FrameStatsConsumer
from eval.temporal.transitions import TransitionResult, boundaries_every, given_joins, score_transitions
from kling.clock import FPS

PROTOCOL_NAME = "drift-v1"
WINDOW_S = 10.0
N_BOOT = 1000
BACKBONE = "pixels"  # the single-video figures use no network


def protocol(window_s: float = WINDOW_S, fps: float = float(FPS)) -> dict:  # float: as recorded protocols show it
    if window_s <= 0:
        raise ValueError("window_s must be > 0")
    return {"name": PROTOCOL_NAME, "fps": fps, "window_s": window_s, "trailing_window_min_fraction": 0.5,
            "slope": "least squares over window centres, per minute", "ratio": "last window / first window",
            "ci": f"95% percentile bootstrap over videos ({N_BOOT}, seed 0); one video: regression t-interval",
            "version": f"{PROTOCOL_NAME}/w{window_s:g}"}


def window_labels(edges: list[tuple[int, int]], fps: float = FPS) -> list[str]:
    return [f"{a / fps:g}-{b / fps:g}s" for a, b in edges]


def window_values(per_frame: np.ndarray, n_frames: int, window_s: float = WINDOW_S, fps: float = FPS,
                  frames: np.ndarray | None = None) -> list[float | None]:
    """Mean of a per-frame series (sharpness, sync confidence...) in each window; None where it has no value.
    ``frames``: the frame index of each value when the series is sampled (default 0..n-1)."""
    x = np.asarray(per_frame, np.float64)
    idx = np.arange(len(x)) if frames is None else np.asarray(frames)
    out = []
    for a, b in window_edges(n_frames, fps, window_s):
        v = x[(idx >= a) & (idx < b)]
        v = v[np.isfinite(v)]
        out.append(float(v.mean()) if len(v) else None)
    return out


def slope_and_ratio(values: list[float | None], centres_min: np.ndarray) -> tuple[float | None, float | None]:
    v = np.array([np.nan if x is None else x for x in values], np.float64)
    ok = np.isfinite(v)
    slope = float(np.polyfit(centres_min[ok], v[ok], 1)[0]) if ok.sum() >= 2 else None
    finite = v[ok]
    ratio = float(finite[-1] / finite[0]) if len(finite) >= 2 and finite[0] != 0 else None
    return slope, ratio


@dataclass
class DriftFigure:
    metric: str
    higher_is_better: bool
    window_s: float
    windows: list[str]
    window_means: list[float | None]  # mean over videos per window
    slope_per_min: float | None = None
    slope_ci: tuple[float, float] | None = None
    ratio_last_first: float | None = None
    ratio_ci: tuple[float, float] | None = None
    n_videos: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _centres(n_windows: int, window_s: float) -> np.ndarray:
    return (np.arange(n_windows) + 0.5) * window_s / 60.0


def _boot_ci(values: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float] | None:
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def drift_figure(metric: str, per_video: list[list[float | None]], window_s: float = WINDOW_S,
                 higher_is_better: bool = True, fps: float = FPS) -> DriftFigure:
    """Drift of a per-video windowed metric: per_video[v][k] is video v's value in window k."""
    n_w = max((len(v) for v in per_video), default=0)
    centres = _centres(n_w, window_s)
    grid = np.full((len(per_video), n_w), np.nan)
    for i, v in enumerate(per_video):
        grid[i, : len(v)] = [np.nan if x is None else x for x in v]
    with np.errstate(all="ignore"):
        means = [None if not np.isfinite(grid[:, k]).any() else float(np.nanmean(grid[:, k])) for k in range(n_w)]
    labels = [f"{k * window_s:g}-{(k + 1) * window_s:g}s" for k in range(n_w)]
    fig = DriftFigure(metric, higher_is_better, window_s, labels, means, n_videos=len(per_video))
    sr = [slope_and_ratio(list(v), centres[: len(v)]) for v in per_video]
    slopes = np.array([np.nan if s is None else s for s, _ in sr])
    ratios = np.array([np.nan if r is None else r for _, r in sr])
    if np.isfinite(slopes).any():
        fig.slope_per_min = float(np.nanmean(slopes))
    if np.isfinite(ratios).any():
        fig.ratio_last_first = float(np.nanmean(ratios))
    if np.isfinite(slopes).sum() >= 2:
        fig.slope_ci, fig.ratio_ci = _boot_ci(slopes), _boot_ci(ratios)
    elif len(per_video) == 1:
        fig.slope_ci = _regression_ci(per_video[0], centres)
    return fig


def _regression_ci(values: list[float | None], centres: np.ndarray) -> tuple[float, float] | None:
    v = np.array([np.nan if x is None else x for x in values], np.float64)
    ok = np.isfinite(v)
    if ok.sum() < 3:
        return None
    r = stats.linregress(centres[: len(v)][ok], v[ok])
    half = stats.t.ppf(0.975, ok.sum() - 2) * r.stderr
    return float(r.slope - half), float(r.slope + half)


def appearance_consistency(st: FrameStats) -> dict:
    """Correlation of window-mean thumbnails: first vs last window, and the minimum over pairs of windows at
    least half the video apart (1 = same look; a scene or colour change lowers it)."""
    edges = window_edges(st.n_frames, st.fps, st.window_s)
    thumbs, counts = st.window_thumbs, st.window_counts
    if len(edges) < len(thumbs):  # the short trailing raw window joins the previous one
        thumbs = np.vstack([thumbs[: len(edges) - 1], thumbs[len(edges) - 1:].sum(0, keepdims=True)])
        counts = np.concatenate([counts[: len(edges) - 1], [counts[len(edges) - 1:].sum()]])
    means = thumbs / np.maximum(counts, 1)[:, None]
    k = len(means)
    if k < 2:
        return {"first_last": None, "min_far": None, "n_windows": k}
    c = np.corrcoef(means) if np.all(means.std(axis=1) > 0) else np.ones((k, k))
    far = [c[i, j] for i in range(k) for j in range(i + 1, k) if (j - i) >= max(1, k / 2)]
    return {"first_last": float(c[0, -1]), "min_far": float(min(far)) if far else None, "n_windows": k}


@dataclass
class DriftResult:
    clip_id: str
    protocol: dict
    n_frames: int
    windows: list[str]
    sharpness: DriftFigure
    appearance: dict
    transitions: TransitionResult
    status: str = "ok"
    reason: str | None = None
    extra: dict = field(default_factory=dict)  # results of extra consumers fed in the same decode

    @property
    def protocol_version(self) -> str:
        return self.protocol["version"]

    def to_dict(self) -> dict:
        return {"clip_id": self.clip_id, "status": self.status, "reason": self.reason, "n_frames": self.n_frames,
                "windows": self.windows, "sharpness": self.sharpness.to_dict(), "appearance": self.appearance,
                "transitions": self.transitions.to_dict(), "backbone": BACKBONE, "backbone_sha256": None,
                "protocol_version": self.protocol_version, "protocol": self.protocol}

    def to_rows(self) -> list[dict]:
        """Partial leaderboard rows: per-window sharpness, the drift figures, appearance and transitions."""
        base = dict(clip_id=self.clip_id, backbone=BACKBONE, backbone_sha256=None,
                    protocol_version=self.protocol_version, status=self.status, reason=self.reason)

        def row(metric, value, n, higher, window="all", stderr=None):
            v = float("nan") if value is None else float(value)
            return base | dict(metric=metric, value=v, stderr=stderr, n=int(n), higher_is_better=higher, window=window)

        rows = [row("sharpness", v, 1, True, window=w) for w, v in zip(self.windows, self.sharpness.window_means)]
        rows += drift_rows(self.sharpness, base)
        rows.append(row("appearance_consistency_first_last", self.appearance["first_last"], self.appearance["n_windows"], True))
        rows.append(row("appearance_consistency_min_far", self.appearance["min_far"], self.appearance["n_windows"], True))
        w = self.transitions.worst
        # the whole clip's figure (window "all", so the leaderboard aggregates it); the worst frame is in to_dict()
        rows.append(row("transition_worst_z", w.z if w else None, len(self.transitions.boundaries), False))
        rows.append(row("transition_max_z", self.transitions.max_z, self.transitions.n_frames, False))
        return rows


def drift_rows(fig: DriftFigure, base: dict) -> list[dict]:
    """Two rows per figure: ``<metric>_drift_slope`` (per minute) and ``<metric>_drift_ratio``; the CI
    half-width goes to ``stderr`` as (hi - lo) / 3.92 (the normal-equivalent standard error)."""
    def se(ci):
        return None if ci is None else (ci[1] - ci[0]) / 3.92

    nan = float("nan")
    return [
        base | dict(metric=f"{fig.metric}_drift_slope", value=nan if fig.slope_per_min is None else fig.slope_per_min,
                    stderr=se(fig.slope_ci), n=fig.n_videos, higher_is_better=fig.higher_is_better, window="all"),
        base | dict(metric=f"{fig.metric}_drift_ratio", value=nan if fig.ratio_last_first is None else fig.ratio_last_first,
                    stderr=se(fig.ratio_ci), n=fig.n_videos, higher_is_better=fig.higher_is_better, window="all"),
    ]


def evaluate_drift(video: str | Path, window_s: float = WINDOW_S, boundaries: list[int] | None = None,
                   segment_s: float | None = None, extra_consumers: dict | None = None,
                   clip_id: str | None = None, max_side: int | None = None) -> DriftResult:
    """Windowed sharpness, its drift, appearance consistency and transition smoothness of one video, from one
    decode; ``extra_consumers`` (e.g. FID/FVD consumers) ride the same decode, their results in ``extra``.
    Bad media raises kling.io.errors.MediaError."""
    from kling.io.frames import decode_once

    proto = protocol(window_s)
    consumers = {"stats": FrameStatsConsumer(FPS, window_s)} | dict(extra_consumers or {})
    out = decode_once(video, consumers, fps=FPS, max_side=max_side)
    st: FrameStats = out.pop("stats")
    edges = window_edges(st.n_frames, FPS, window_s)
    sharp = window_values(st.sharpness, st.n_frames, window_s)
    fig = drift_figure("sharpness", [sharp], window_s, higher_is_better=True)
    fig.windows = window_labels(edges)
    if boundaries is None:
        boundaries = given_joins(video)
    if boundaries is None and segment_s:
        boundaries = boundaries_every(st.n_frames, segment_s)
    trans = score_transitions(st.change, boundaries)
    return DriftResult(clip_id or Path(video).stem, proto, st.n_frames, window_labels(edges), fig,
                       appearance_consistency(st), trans, extra=out)


__all__ = ["DriftFigure", "DriftResult", "drift_figure", "drift_rows", "evaluate_drift", "protocol",
           "slope_and_ratio", "window_values", "appearance_consistency"]
