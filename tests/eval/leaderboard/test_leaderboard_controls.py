"""The order each metric must give the controls; violations flag the metric."""

from __future__ import annotations

import pyarrow as pa

from eval.leaderboard import controls as C
from eval.leaderboard.aggregate import aggregate
from eval.leaderboard.synthetic import system_rows

CASES = [f"c{i}" for i in range(6)]


def _controls(sync_gt=8.0, sync_shift=8.0, csim_gt=0.85, csim_other=0.2, drop=()):
    means = {
        C.GROUND_TRUTH: {"sync_c": sync_gt, "sync_d": 6.0, "csim": csim_gt},
        C.AUDIO_SHIFTED: {"sync_c": sync_shift, "sync_d": 9.0, "csim": csim_gt},
        C.STILL_REFERENCE: {"sync_c": 0.5, "sync_d": 12.0, "csim": 0.95},
        C.OTHER_IDENTITY: {"sync_c": 7.0, "sync_d": 6.5, "csim": csim_other},
    }
    tables = [system_rows(s, {k: v for k, v in m.items() if (s, k) not in drop}, CASES, noise=0.01)
              for s, m in means.items()]
    return pa.concat_tables(tables + [system_rows("ours", {"sync_c": 6.0, "sync_d": 7.0, "csim": 0.7}, CASES)])


def test_good_controls_pass():
    outcomes = C.evaluate_controls(_controls())
    by = {(o.metric, o.better, o.worse): o.status for o in outcomes}
    assert by[("sync_c", C.GROUND_TRUTH, C.STILL_REFERENCE)] == "pass"
    assert by[("csim", C.GROUND_TRUTH, C.OTHER_IDENTITY)] == "pass"
    assert by[("sync_d", C.GROUND_TRUTH, C.STILL_REFERENCE)] == "pass"  # lower is better, from the rows
    # Sync-C/D are taken at the best offset in +-15 frames, so a 0.5 s shift does not lower them: no rule
    assert ("sync_c", C.GROUND_TRUTH, C.AUDIO_SHIFTED) not in by
    assert C.check_controls(_controls()) == []
    assert all(o.n_cases == 6 for o in outcomes)


def test_wrong_order_is_a_violation_naming_the_metric():
    v = C.check_controls(_controls(sync_gt=0.2))
    assert [(x.metric, x.worse, x.status) for x in v] == [("sync_c", C.STILL_REFERENCE, "fail")]
    assert "sync_c(control.ground_truth)=" in v[0].message and ">" in v[0].message
    v = C.check_controls(_controls(csim_gt=0.1))
    assert [(x.metric, x.better, x.worse) for x in v] == [("csim", C.GROUND_TRUTH, C.OTHER_IDENTITY)]
    agg = C.mark_flagged(aggregate(_controls(csim_gt=0.1)), v)
    assert agg[agg.metric == "csim"]["flagged"].all() and not agg[agg.metric == "sync_c"]["flagged"].any()
    assert "csim" in agg[agg.metric == "csim"]["flag_reason"].iloc[0]
    assert C.flagged_metrics(v) == {("demo", "csim", "arcface_w600k_r50", "b" * 64, "csim/1")}


def test_missing_control_value_flags_but_ungenerated_control_is_skipped():
    v = C.check_controls(_controls(drop=[(C.OTHER_IDENTITY, "csim")]))
    assert [(x.metric, x.better, x.status) for x in v] == [("csim", C.GROUND_TRUTH, "missing"),
                                                           ("csim", C.STILL_REFERENCE, "missing")]
    assert "cannot check" in v[0].message
    # no ground truth in the benchmark -> the GT controls were never generated: skipped, not blocking
    no_gt = pa.concat_tables([system_rows(C.STILL_REFERENCE, {"sync_c": 0.5}, CASES),
                              system_rows("ours", {"sync_c": 6.0}, CASES)])
    out = C.evaluate_controls(no_gt)
    assert {o.status for o in out} == {"skipped"} and C.check_controls(no_gt) == []


def test_ties_fail_and_margin():
    tie = pa.concat_tables([system_rows(C.GROUND_TRUTH, {"sync_c": 3.0}, CASES, noise=0),
                            system_rows(C.STILL_REFERENCE, {"sync_c": 3.0}, CASES, noise=0)])
    assert [(x.metric, x.status) for x in C.check_controls(tie)] == [("sync_c", "fail")]
    assert C.check_controls(_controls(), margin=100.0)  # nothing beats a huge margin


def test_abs_offset_rule_and_is_control():
    rule = [r for r in C.RULES if r.metric == "sync_av_offset"][0]
    assert rule.use_abs and rule.direction == "lower"
    meta = {"sync_av_offset": (None, "syncnet_v2", "a" * 64, "sync_cd/1")}
    t = pa.concat_tables([system_rows(C.GROUND_TRUTH, {"sync_av_offset": 0.0}, CASES, noise=0, metrics=meta),
                          system_rows(C.AUDIO_SHIFTED, {"sync_av_offset": -12.0}, CASES, noise=0, metrics=meta)])
    assert [o.status for o in C.evaluate_controls(t)] == ["pass"]
    assert C.is_control(C.STILL_REFERENCE) and not C.is_control("ours")


def test_one_filter_for_controls_and_for_violations():
    df = aggregate(_controls(csim_gt=0.1))
    mask = C.control_mask(df["system"])
    assert set(df[mask]["system"]) == set(C.CONTROLS) and set(C.without_controls(df)["system"]) == {"ours"}
    rows = _controls(csim_gt=0.1, drop=[(C.OTHER_IDENTITY, "sync_c")])
    outcomes = C.evaluate_controls(rows)
    bad = C.violations(outcomes)
    assert {o.status for o in bad} == {"fail"} and all(o.violated for o in bad)
    assert [o for o in outcomes if o.status in ("fail", "missing")] == bad == C.check_controls(rows)
    assert not any(o.violated for o in outcomes if o not in bad)


def test_rank_table_flags_failed_metrics_and_never_ranks_controls():
    from eval.leaderboard.aggregate import rank, rank_table

    rows = _controls(csim_gt=0.1)
    table, outcomes = rank_table(rows)
    bad = C.violations(outcomes)
    assert table.equals(rank(C.mark_flagged(aggregate(rows), bad), C.flagged_metrics(bad)))
    assert table[C.control_mask(table["system"])]["rank"].isna().all()
    ours = table[table["system"] == "ours"].set_index("metric")
    assert ours.loc["csim", "flagged"] and ours["rank"].isna()["csim"]  # failed its controls: not ranked
    assert not ours.loc["sync_c", "flagged"] and ours.loc["sync_c", "rank"] == 1
