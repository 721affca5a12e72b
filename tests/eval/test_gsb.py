"""GSB human preference: (G+S)/(B+S), shares, intervals; KlingAvatar 2.0 Table 1 reproduced."""

from __future__ import annotations

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from eval.gsb import JudgmentError, gsb_score, gsb_table, load_judgments, orient
from kling.cli.leaderboard import register

# KlingAvatar 2.0 (arXiv 2512.13313) Table 1, Overall: (G%, S%, B%) -> published GSB
TABLE1 = {"HeyGen": ((43.2, 28.2, 28.6), 1.26), "Kling-Avatar": ((55.2, 22.4, 22.4), 1.73),
          "OmniHuman-1.5": ((56.9, 26.7, 16.4), 1.94)}


@pytest.mark.parametrize("rival", sorted(TABLE1))
def test_table1_overall_from_published_shares(rival):
    (g, s, b), published = TABLE1[rival]
    assert round(gsb_score(g, s, b), 2) == published


def _judgments(counts: dict[str, tuple[int, int, int]], dimension="overall", raters=1) -> pd.DataFrame:
    rows = []
    for rival, (g, s, b) in counts.items():
        labels = ["G"] * g + ["S"] * s + ["B"] * b
        for i, j in enumerate(labels):
            rows.append({"case": f"case{i % 100:03d}", "system_a": "ours", "system_b": rival, "dimension": dimension,
                         "judgment": j, "rater": f"r{i % raters}"})
    return pd.DataFrame(rows)


def test_table1_from_judgments_with_intervals():
    counts = {k: tuple(int(round(10 * x)) for x in v[0]) for k, v in TABLE1.items()}  # 1000 judgments each
    t = gsb_table(_judgments(counts)).set_index("system_b")
    for rival, (_, published) in TABLE1.items():
        r = t.loc[rival]
        assert round(r["gsb"], 2) == published and r["n"] == 1000
        assert r["G_pct"] == pytest.approx(TABLE1[rival][0][0]) and r["B_pct"] == pytest.approx(TABLE1[rival][0][2])
        assert r["ci_low"] < r["gsb"] < r["ci_high"]
    again = gsb_table(_judgments(counts)).set_index("system_b")
    pd.testing.assert_frame_equal(t, again)  # seeded


def test_aliases_orientation_and_per_dimension():
    df = pd.DataFrame([
        {"case": "c1", "system_a": "ours", "system_b": "x", "dimension": "Overall", "judgment": "good", "rater": "r1"},
        {"case": "c2", "system_a": "x", "system_b": "ours", "dimension": "overall", "judgment": "G", "rater": "r1"},
        {"case": "c3", "system_a": "ours", "system_b": "x", "dimension": "face-lip sync", "judgment": "tie", "rater": "r2"},
    ])
    j = load_judgments(df)
    assert list(j["judgment"]) == ["G", "G", "S"] and set(j["dimension"]) == {"overall", "face lip sync"}
    o = orient(j, "ours")
    assert list(o["judgment"]) == ["G", "B", "S"] and set(o["system_a"]) == {"ours"}
    t = gsb_table(df, focus="ours").set_index("dimension")
    assert t.loc["overall", "gsb"] == 1.0 and t.loc["overall", "G"] == 1 and t.loc["overall", "B"] == 1
    assert t.loc["face lip sync", "gsb"] == 1.0


def test_bad_judgments_name_the_row(tmp_path):
    df = pd.DataFrame([{"case": "c1", "system_a": "a", "system_b": "b", "dimension": "overall", "judgment": "maybe", "rater": "r"}])
    with pytest.raises(JudgmentError, match="row 2: column 'judgment' has 'maybe'"):
        load_judgments(df)
    with pytest.raises(JudgmentError, match=r"missing column\(s\) \['rater'\]"):
        load_judgments(df.drop(columns="rater"))
    with pytest.raises(JudgmentError, match="both 'a'"):
        load_judgments(df.assign(system_b="a", judgment="G"))


def test_cli_reads_csv_and_parquet(tmp_path):
    counts = {"HeyGen": (432, 282, 286)}
    csv = tmp_path / "j.csv"
    _judgments(counts, raters=3).to_csv(csv, index=False)
    pq = tmp_path / "j.parquet"
    _judgments(counts).to_parquet(pq)
    app = typer.Typer()
    register(app)
    for path in (csv, pq):
        r = CliRunner().invoke(app, ["gsb", str(path), "--out", str(tmp_path / "t.parquet")])
        assert r.exit_code == 0, r.output
        assert "1.26" in r.output and "43.2" in r.output
    assert pd.read_parquet(tmp_path / "t.parquet")["gsb"].round(2).tolist() == [1.26]
    bad = tmp_path / "bad.csv"
    bad.write_text("case,system_a,system_b,dimension,judgment,rater\nc,a,b,overall,?,r\n")
    r = CliRunner().invoke(app, ["gsb", str(bad)])
    assert r.exit_code == 2 and "row 2" in r.output
