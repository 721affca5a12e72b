"""Aggregates with bootstrap intervals, ranks within backbone + protocol, paired comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from eval.leaderboard.aggregate import (IncomparableError, aggregate, bootstrap_ci, paired_comparison, rank,
                                        sign_flip_p)
from eval.leaderboard.schema import AGGREGATE
from eval.leaderboard.synthetic import system_rows

CASES = [f"case{i:02d}" for i in range(10)]


def _rows(*tables) -> pd.DataFrame:
    return pa.concat_tables(tables).to_pandas()


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = np.random.default_rng(1).normal(3.0, 1.0, 40)
    a, b = bootstrap_ci(x, seed=0, key=("k",)), bootstrap_ci(x, seed=0, key=("k",))
    assert a == b
    assert a.low < a.mean < a.high and a.n == 40
    assert abs(a.stderr - x.std(ddof=1) / np.sqrt(40)) < 0.04  # bootstrap SE ~ analytic SE
    assert bootstrap_ci(x, seed=1, key=("k",)).low != a.low
    one = bootstrap_ci([2.0])
    assert one.mean == 2.0 and one.low is None and one.stderr is None
    assert bootstrap_ci([None, float("nan")]).n == 0


def test_aggregate_is_bit_identical_whatever_the_row_order_and_other_systems():
    ours = system_rows("ours", {"sync_c": 7.0, "csim": 0.8}, CASES, noise=0.5)
    theirs = system_rows("theirs", {"sync_c": 6.0, "csim": 0.7}, CASES, noise=0.5)
    a = aggregate(_rows(ours, theirs))
    shuffled = _rows(theirs, ours).sample(frac=1.0, random_state=3)
    b = aggregate(shuffled)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    alone = aggregate(_rows(ours))
    pd.testing.assert_frame_equal(alone.reset_index(drop=True),
                                  a[a["system"] == "ours"].reset_index(drop=True), check_exact=True)
    r = a[(a["system"] == "ours") & (a["metric"] == "sync_c")].iloc[0]
    per_case = ours.to_pandas().query("metric == 'sync_c'")["value"]
    assert r["value"] == pytest.approx(per_case.mean()) and r["n"] == 10 and r["clip_id"] == AGGREGATE
    assert r["ci_low"] < r["value"] < r["ci_high"] and r["status"] == "ok" and r["n_missing"] == 0


def test_missing_cases_are_counted_not_dropped():
    t = system_rows("ours", {"sync_c": 7.0}, CASES[:8], missing=["case03"])
    agg = aggregate(t, cases=CASES)  # case08, case09 have no row at all
    r = agg.iloc[0]
    assert r["status"] == "incomplete" and r["n_missing"] == 3 and r["n_cases"] == 10 and r["n"] == 7
    assert r["missing_cases"] == "case03,case08,case09"
    assert "missing: no output" in r["reason"]
    ranked = rank(agg)
    assert pd.isna(ranked.iloc[0]["rank"])  # an incomplete row is never ranked
    # without a case list, the cases other systems have rows for are expected
    both = aggregate(_rows(system_rows("full", {"sync_c": 7.0}, CASES), t)).set_index("system")
    assert both.loc["full", "status"] == "ok" and both.loc["ours", "n_missing"] == 3


def test_ranks_only_within_backbone_and_protocol():
    other = {"sync_c": (True, "sync_expert", "e" * 64, "sync_cd_expert/1")}
    rows = _rows(
        system_rows("a", {"sync_c": 7.0}, CASES), system_rows("b", {"sync_c": 6.0}, CASES),
        system_rows("c", {"sync_c": 9.0}, CASES, metrics=other),  # best number, other backbone
        system_rows("d", {"sync_d": 7.0}, CASES), system_rows("e", {"sync_d": 6.0}, CASES),  # lower is better
        system_rows("control.ground_truth", {"sync_c": 99.0}, CASES),
    )
    r = rank(aggregate(rows)).set_index(["system", "metric"])
    assert r.loc[("a", "sync_c"), "rank"] == 1 and r.loc[("b", "sync_c"), "rank"] == 2
    assert r.loc[("a", "sync_c"), "rank_of"] == 2
    assert r.loc[("c", "sync_c"), "rank"] == 1 and r.loc[("c", "sync_c"), "rank_of"] == 1
    assert r.loc[("e", "sync_d"), "rank"] == 1 and r.loc[("d", "sync_d"), "rank"] == 2
    assert pd.isna(r.loc[("control.ground_truth", "sync_c"), "rank"])
    flagged = {("demo", "sync_d", "syncnet_v2", "a" * 64, "sync_cd/1")}
    assert rank(aggregate(rows), flagged).set_index(["system", "metric"])["rank"].isna()[("d", "sync_d")]


def test_set_level_metric_passes_through():
    agg = aggregate(system_rows("a", {"fvd": 123.0, "csim": 0.8}, CASES))
    fvd = agg[agg["metric"] == "fvd"].iloc[0]
    assert fvd["value"] == 123.0 and fvd["higher_is_better"] is False or fvd["higher_is_better"] == False  # noqa: E712


def test_paired_comparison_finds_a_real_difference_and_not_a_fake_one():
    a = system_rows("a", {"sync_c": 7.0}, CASES, noise=0.3)
    b = system_rows("b", {"sync_c": 6.0}, CASES, noise=0.3)
    c = paired_comparison(_rows(a, b), "a", "b", "sync_c")
    assert c.n == 10 and c.diff == pytest.approx(c.mean_a - c.mean_b) and c.better == "a"
    assert c.p_value < 0.01 and c.wins_a == 10 and c.ci_low > 0
    same = system_rows("b2", {"sync_c": 7.0}, CASES, noise=0.3, seed=5)
    n = paired_comparison(_rows(a, same), "a", "b2", "sync_c")
    assert n.p_value > 0.05 and n.ci_low < 0 < n.ci_high
    assert paired_comparison(_rows(a, b), "a", "b", "sync_c") == c  # deterministic


def test_paired_comparison_uses_shared_cases_and_refuses_mixed_backbones():
    a = system_rows("a", {"sync_c": 7.0}, CASES)
    b = system_rows("b", {"sync_c": 6.0}, CASES[:6])
    assert paired_comparison(_rows(a, b), "a", "b", "sync_c").n == 6
    x = system_rows("x", {"sync_c": 6.0}, CASES, metrics={"sync_c": (True, "other", "f" * 64, "sync_cd/2")})
    with pytest.raises(IncomparableError, match="backbone/protocol"):
        paired_comparison(_rows(a, x), "a", "x", "sync_c")
    with pytest.raises(ValueError, match="no per-case"):
        paired_comparison(_rows(a), "a", "nobody", "sync_c")


def test_sign_flip_exact_and_monte_carlo():
    assert sign_flip_p(np.ones(5)) == pytest.approx(2 / 32)  # only all-plus and all-minus reach the mean
    assert sign_flip_p(np.array([1.0, -1.0])) == 1.0
    p = sign_flip_p(np.full(30, 0.5) + np.random.default_rng(0).normal(0, 0.1, 30))
    assert p == sign_flip_p(np.full(30, 0.5) + np.random.default_rng(0).normal(0, 0.1, 30)) and p < 0.001
