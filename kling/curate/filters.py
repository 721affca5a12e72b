"""Curation filters: thresholds on the quality table, every failing reason recorded per clip.

Filters live in a registry, ``FILTERS``: name -> fn(df, cfg) -> Series (index of df) of lists of short reason
codes. ``apply_filters`` runs the enabled ones and unions their reasons, so adding a filter touches no existing
one. A later filter brings its own thresholds either as a field of a FilterConfig subclass or in
``FilterConfig.extra``; ``cfg.param(name)`` reads both. For example, the lip-sync filter is meant to be::

    @register_filter("lip_sync")
    def lip_sync(df, cfg):
        # cfg.param("min_sync_confidence") from extra={"min_sync_confidence": 3.0} or a subclass field
        return threshold_reasons(df, "sync_confidence", "out_of_sync", low=cfg.param("min_sync_confidence"),
                                 reject_unmeasured=cfg.reject_unmeasured)

A threshold set to None disables its check. A metric that is NaN (not measurable) gives the reason
``unmeasured_<column>`` when ``reject_unmeasured`` is set, rather than passing silently or being mislabelled.

A reason is a short code (the column the manifest groups by) that also says what was measured: the items a
filter returns may be plain strings or ``Reason`` (a str equal to its code, carrying ``.detail``, e.g.
"speech_ratio 0.12 < 0.3"). ``apply_filters`` writes the codes to ``reject_reasons`` and "code: detail; ..."
to ``reject_detail``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kling.curate.clips import METRIC_COLUMNS

FilterFn = Callable[[pd.DataFrame, "FilterConfig"], pd.Series]
FILTERS: dict[str, FilterFn] = {}


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds (None disables a check). Units follow kling.curate.quality's metric columns."""

    min_duration_s: float | None = 2.0
    max_duration_s: float | None = None
    min_face_px: float | None = 64.0  # median face-box height in pixels
    min_face_ratio: float | None = 0.10  # median face-box height / frame height
    max_abs_yaw: float | None = 45.0  # degrees, median over the clip
    max_abs_pitch: float | None = 30.0
    min_sharpness: float | None = 20.0  # Laplacian variance on the 112x112 grey face crop
    max_motion: float | None = 0.05  # median box-centre speed, box heights per frame
    max_face_diff: float | None = None  # median crop difference (0-1) between frames
    min_speech_ratio: float | None = 0.3
    max_interpolated_ratio: float | None = None
    reject_unmeasured: bool = True
    enabled: tuple[str, ...] | None = None  # registry names to run; None = all registered
    extra: dict[str, Any] = field(default_factory=dict)  # thresholds of later-registered filters

    def param(self, name: str, default: Any = None) -> Any:
        """A threshold by name: a field (also of subclasses) first, then ``extra``."""
        if hasattr(self, name):
            return getattr(self, name)
        return self.extra.get(name, default)


def register_filter(name: str, fn: FilterFn | None = None):
    """Register ``fn`` under ``name`` (usable as a decorator). Re-registering a name replaces it."""

    def deco(f: FilterFn) -> FilterFn:
        FILTERS[name] = f
        return f

    return deco(fn) if fn is not None else deco


class Reason(str):
    """A reason code (compares and groups as the plain code) with what was measured, ``detail``."""

    detail: str

    def __new__(cls, code: str, detail: str = "") -> "Reason":
        r = super().__new__(cls, code)
        r.detail = detail
        return r


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"


def reason_text(reason: str) -> str:
    """"code: detail" (or the code alone when nothing was measured)."""
    detail = getattr(reason, "detail", "")
    return f"{reason}: {detail}" if detail else str(reason)


def _empty(df: pd.DataFrame) -> pd.Series:
    return pd.Series([[] for _ in range(len(df))], index=df.index, dtype=object)


def threshold_reasons(
    df: pd.DataFrame,
    column: str,
    code: str,
    low: float | None = None,
    high: float | None = None,
    reject_unmeasured: bool = True,
) -> pd.Series:
    """[code] where df[column] < low or > high; [unmeasured_<column>] where it is NaN or absent. Each reason
    carries the measured value and the threshold (``Reason.detail``, e.g. "duration_s 0.48 < 2")."""
    out = _empty(df)
    if low is None and high is None:
        return out
    if column not in df.columns:
        values = np.full(len(df), np.nan)
    else:
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(np.float64)
    bad = np.zeros(len(df), bool)
    if low is not None:
        bad |= values < low
    if high is not None:
        bad |= values > high
    missing = ~np.isfinite(values)
    for i in np.flatnonzero(bad):
        v = values[i]
        detail = (f"{column} {_num(v)} < {_num(low)}" if low is not None and v < low
                  else f"{column} {_num(v)} > {_num(high)}")
        out.iat[i] = [Reason(code, detail)]
    if reject_unmeasured:
        why = "not in the quality table" if column not in df.columns else "not measurable (NaN)"
        for i in np.flatnonzero(missing):
            out.iat[i] = [Reason(f"unmeasured_{column}", f"{column} {why}")]
    return out


def _combine(*series: pd.Series) -> pd.Series:
    out = _empty(series[0])
    for i in range(len(out)):
        merged: list[str] = []
        for s in series:
            for r in s.iat[i]:
                if r not in merged:
                    merged.append(r)
                elif getattr(r, "detail", ""):  # same code from another measure: keep both details
                    k = merged.index(r)
                    first = getattr(merged[k], "detail", "")
                    merged[k] = Reason(str(r), f"{first}, {r.detail}" if first else r.detail)
        out.iat[i] = merged
    return out


@register_filter("duration")
def duration_filter(df: pd.DataFrame, cfg: FilterConfig) -> pd.Series:
    u = cfg.reject_unmeasured
    return _combine(threshold_reasons(df, "duration_s", "too_short", low=cfg.min_duration_s, reject_unmeasured=u),
                    threshold_reasons(df, "duration_s", "too_long", high=cfg.max_duration_s, reject_unmeasured=u))


@register_filter("face_size")
def face_size_filter(df: pd.DataFrame, cfg: FilterConfig) -> pd.Series:
    u = cfg.reject_unmeasured
    return _combine(threshold_reasons(df, "face_px", "face_too_small", low=cfg.min_face_px, reject_unmeasured=u),
                    threshold_reasons(df, "face_ratio", "face_too_small", low=cfg.min_face_ratio, reject_unmeasured=u))


@register_filter("pose")
def pose_filter(df: pd.DataFrame, cfg: FilterConfig) -> pd.Series:
    u = cfg.reject_unmeasured
    return _combine(threshold_reasons(df, "abs_yaw", "extreme_pose", high=cfg.max_abs_yaw, reject_unmeasured=u),
                    threshold_reasons(df, "abs_pitch", "extreme_pose", high=cfg.max_abs_pitch, reject_unmeasured=u))


@register_filter("sharpness")
def sharpness_filter(df: pd.DataFrame, cfg: FilterConfig) -> pd.Series:
    return threshold_reasons(df, "sharpness", "blurry", low=cfg.min_sharpness, reject_unmeasured=cfg.reject_unmeasured)


@register_filter("motion")
def motion_filter(df: pd.DataFrame, cfg: FilterConfig) -> pd.Series:
    u = cfg.reject_unmeasured
    return _combine(threshold_reasons(df, "box_speed", "too_much_motion", high=cfg.max_motion, reject_unmeasured=u),
                    threshold_reasons(df, "face_diff", "too_much_motion", high=cfg.max_face_diff, reject_unmeasured=u))


@register_filter("speech")
def speech_filter(df: pd.DataFrame, cfg: FilterConfig) -> pd.Series:
    return threshold_reasons(df, "speech_ratio", "no_speech", low=cfg.min_speech_ratio,
                             reject_unmeasured=cfg.reject_unmeasured)


@register_filter("interpolation")
def interpolation_filter(df: pd.DataFrame, cfg: FilterConfig) -> pd.Series:
    return threshold_reasons(df, "interpolated_ratio", "mostly_interpolated", high=cfg.max_interpolated_ratio,
                             reject_unmeasured=cfg.reject_unmeasured)


def apply_filters(quality_df: pd.DataFrame, config: FilterConfig = FilterConfig()) -> pd.DataFrame:
    """Copy of ``quality_df`` with ``kept`` (bool), ``reject_reasons`` (list of codes, every one that
    applies, in registry order) and ``reject_detail`` ("code: what was measured; ...", None when kept)."""
    df = quality_df.copy()
    names = list(FILTERS) if config.enabled is None else list(config.enabled)
    unknown = [n for n in names if n not in FILTERS]
    if unknown:
        raise KeyError(f"unknown filters {unknown}; registered: {sorted(FILTERS)}")
    results = [FILTERS[n](df, config) for n in names]
    reasons = _combine(*results) if results else _empty(df)
    df["reject_reasons"] = pd.Series([[str(r) for r in rs] for rs in reasons], index=df.index, dtype=object)
    df["reject_detail"] = pd.Series(["; ".join(reason_text(r) for r in rs) or None for rs in reasons],
                                    index=df.index, dtype=object)
    df["kept"] = np.array([len(r) == 0 for r in reasons], bool)
    return df


def reason_counts(filtered: pd.DataFrame) -> dict[str, int]:
    """How many rows carry each reason (a clip with two reasons counts under both)."""
    counts: dict[str, int] = {}
    for reasons in filtered.get("reject_reasons", []):
        for r in reasons:
            counts[r] = counts.get(r, 0) + 1
    return dict(sorted(counts.items()))


# Video-level reasons for videos that never reached the clip stage.
VIDEO_REJECT_REASONS = ("unreadable", "truncated", "empty", "no_video", "frame_too_large", "no_audio", "no_face",
                        "no_candidates")


def rejected_video_row(
    video_id: str,
    reason: str,
    detail: str = "",
    source_path: str | None = None,
    config_hash: str | None = None,
) -> dict[str, Any]:
    """A curated-manifest row (clips.CURATED_MANIFEST_SCHEMA) for a video rejected before the clip stage;
    ``reason`` is a short code (a MediaError's ``.reason``, or e.g. "no_face", "no_audio")."""
    row: dict[str, Any] = {
        "clip_id": f"{video_id}-rejected",
        "video_id": video_id,
        "source_path": source_path,
        "shot": None,
        "track_id": None,
        "start_frame": None,
        "end_frame": None,
        "start_s": np.nan,
        "end_s": np.nan,
        "kept": False,
        "reject_reasons": [str(reason)],
        "reject_detail": str(detail),
        "config_hash": config_hash,
    }
    row.update({m: np.nan for m in METRIC_COLUMNS})
    return row
