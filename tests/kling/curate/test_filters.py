"""Filters: every failing reason is listed, the registry takes new filters, manifest rows fit the schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kling.curate import filters as F
from kling.curate.clips import CURATED_MANIFEST_SCHEMA, METRIC_COLUMNS, manifest_table


def _row(clip, **over):
    base = dict(clip_id=clip, video_id="v", shot=0, track_id=0, start_frame=0, end_frame=100, n_frames=100,
                duration_s=4.0, sharpness=200.0, face_px=160.0, face_ratio=0.4, abs_yaw=5.0, abs_pitch=3.0,
                abs_roll=1.0, yaw_std=1.0, pitch_std=1.0, box_speed=0.005, face_diff=0.01, speech_ratio=0.8,
                interpolated_ratio=0.0)
    base.update(over)
    return base


def _df():
    return pd.DataFrame([
        _row("good"),
        _row("short", duration_s=1.0),
        _row("bad_all", duration_s=0.5, sharpness=3.0, face_px=30.0, face_ratio=0.05, abs_yaw=70.0,
             box_speed=0.3, speech_ratio=0.0),
        _row("pitch", abs_pitch=50.0),
        _row("small_ratio_only", face_ratio=0.05),
        _row("nan_pose", abs_yaw=np.nan, abs_pitch=np.nan),
    ])


def test_every_reason_listed():
    out = F.apply_filters(_df(), F.FilterConfig())
    r = dict(zip(out["clip_id"], out["reject_reasons"]))
    assert r["good"] == [] and r["short"] == ["too_short"] and r["pitch"] == ["extreme_pose"]
    assert r["bad_all"] == ["too_short", "face_too_small", "extreme_pose", "blurry", "too_much_motion", "no_speech"]
    assert r["small_ratio_only"] == ["face_too_small"]
    assert r["nan_pose"] == ["unmeasured_abs_yaw", "unmeasured_abs_pitch"]
    assert out["kept"].tolist() == [True, False, False, False, False, False]
    assert F.reason_counts(out)["too_short"] == 2


def test_thresholds_can_be_disabled_and_unmeasured_passed():
    cfg = F.FilterConfig(min_duration_s=None, max_abs_yaw=None, max_abs_pitch=None, reject_unmeasured=False)
    out = F.apply_filters(_df(), cfg)
    r = dict(zip(out["clip_id"], out["reject_reasons"]))
    assert r["short"] == [] and r["nan_pose"] == [] and r["pitch"] == []
    assert r["bad_all"] == ["face_too_small", "blurry", "too_much_motion", "no_speech"]
    only = F.apply_filters(_df(), F.FilterConfig(enabled=("sharpness",)))
    assert only["kept"].sum() == 5
    with pytest.raises(KeyError):
        F.apply_filters(_df(), F.FilterConfig(enabled=("nope",)))


def test_registry_accepts_a_new_filter_with_its_own_threshold(monkeypatch):
    monkeypatch.setattr(F, "FILTERS", dict(F.FILTERS))

    @F.register_filter("lip_sync")
    def lip_sync(df, cfg):
        return F.threshold_reasons(df, "sync_confidence", "out_of_sync", low=cfg.param("min_sync_confidence"),
                                   reject_unmeasured=cfg.reject_unmeasured)

    df = _df().iloc[:2].assign(sync_confidence=[5.0, 1.0])
    out = F.apply_filters(df, F.FilterConfig(extra={"min_sync_confidence": 3.0}))
    assert out["reject_reasons"].tolist() == [[], ["too_short", "out_of_sync"]]
    # without the metric column the clip is flagged as unmeasured, not silently passed
    out = F.apply_filters(_df().iloc[:1], F.FilterConfig(extra={"min_sync_confidence": 3.0}))
    assert out["reject_reasons"].tolist() == [["unmeasured_sync_confidence"]]


def test_empty_table():
    out = F.apply_filters(pd.DataFrame(columns=list(_row("x"))), F.FilterConfig())
    assert len(out) == 0 and {"kept", "reject_reasons"} <= set(out.columns)


def test_manifest_rows_fit_schema_and_round_trip(tmp_path):
    clips = F.apply_filters(_df(), F.FilterConfig())
    rejected = pd.DataFrame([F.rejected_video_row("w", "unreadable", "moov atom not found", source_path="/x/w.mp4")])
    table = manifest_table(pd.concat([clips, rejected], ignore_index=True), source_path="/x/v.mp4",
                           config_hash="abc123")
    assert table.schema.equals(CURATED_MANIFEST_SCHEMA)
    pq.write_table(table, tmp_path / "m.parquet")
    back = pq.read_table(tmp_path / "m.parquet").to_pandas()
    assert len(back) == 7 and back["kept"].sum() == 1
    last = back.iloc[-1]
    assert last["clip_id"] == "w-rejected" and list(last["reject_reasons"]) == ["unreadable"]
    assert last["source_path"] == "/x/w.mp4" and pd.isna(last["shot"]) and np.isnan(last["sharpness"])
    assert back.iloc[0]["source_path"] == "/x/v.mp4" and back.iloc[0]["end_s"] == pytest.approx(4.0)
    assert (back["config_hash"] == "abc123").all()
    assert set(METRIC_COLUMNS) <= set(back.columns)
    assert pa.types.is_list(table.schema.field("reject_reasons").type)
    with pytest.raises(ValueError):
        manifest_table(pd.DataFrame({"clip_id": ["a"]}))
