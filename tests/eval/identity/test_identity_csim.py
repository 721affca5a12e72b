"""The CSIM protocol on face similarities made here: windows, worst window, face-found rate, assignment, rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from eval.identity.csim import (
    MISSING_SCORE,
    IdentityResult,
    aggregate,
    assign_tracks,
    clip_csim,
    protocol,
    score_faces,
    window_edges,
)

LEADERBOARD_KEYS = {"metric", "value", "stderr", "n", "higher_is_better", "backbone", "backbone_sha256",
                    "protocol_version", "window", "clip_id"}


def _faces(rows):
    """rows: (frame, track_id, [sim per reference])."""
    return pd.DataFrame({"frame": [r[0] for r in rows], "track_id": [r[1] for r in rows],
                         "sim": [np.asarray(r[2], float) for r in rows]})


def test_protocol_is_versioned_by_its_settings():
    p = protocol()
    assert p["version"] == "csim-v1/fps25/s5/w10" and p["stride_frames"] == 5 and p["window_s"] == 10.0
    assert protocol(stride_frames=1, window_s=5)["version"] == "csim-v1/fps25/s1/w5"
    with pytest.raises(ValueError):
        protocol(stride_frames=0)


def test_window_edges_merge_a_short_tail():
    assert window_edges(625, 25, 10) == [(0, 250), (250, 500), (500, 625)]  # 5 s tail = half: kept
    assert window_edges(550, 25, 10) == [(0, 250), (250, 550)]  # 2 s tail joins the previous window
    assert window_edges(100, 25, 10) == [(0, 100)]  # shorter than one window
    assert window_edges(0, 25, 10) == []


def test_assignment_is_optimal_and_joins_fragments_without_overlap():
    a_main, b_main, a_after_cut, stranger = (np.arange(0, 100, 5), np.arange(0, 100, 5),
                                             np.arange(200, 300, 5), np.arange(50, 60, 5))
    # Greedy by row would give ref 0 track 1 (0.62); the optimum pairs ref 0-track 0 and ref 1-track 1.
    aff = np.array([[0.60, 0.62, 0.55, 0.1],
                    [0.05, 0.90, 0.02, 0.3]])
    out = assign_tracks(aff, [a_main, b_main, a_after_cut, stranger])
    assert out[0] == [0, 2]  # the fragment after the cut joins ref 0; it overlaps nobody there
    assert out[1] == [1]  # the stranger overlaps both characters in time: left out
    assert assign_tracks(np.zeros((2, 0)), []) == [[], []]
    # More references than tracks: one reference is left with nothing.
    assert sorted(map(len, assign_tracks(np.array([[0.9], [0.2]]), [a_main]))) == [0, 1]


def test_windows_worst_window_and_face_found_rate():
    p = protocol()  # stride 5, 10 s windows at 25 fps
    n_frames = 500  # 20 s -> 100 sampled frames, 50 per window
    rows = [(f, 7, [0.9]) for f in range(0, 250, 5)]  # identity held in the first window
    rows += [(f, 7, [0.3]) for f in range(250, 500, 10)]  # drifted, and the face found in half the frames
    chars, windows = score_faces(_faces(rows), n_frames, ["ref.png"], p)
    c = chars[0]
    assert (c.n_sampled, c.n_found, c.tracks, c.missing) == (100, 75, [7], False)
    assert c.face_found_rate == pytest.approx(0.75)
    assert c.csim == pytest.approx((50 * 0.9 + 25 * 0.3) / 75)
    assert [w.csim for w in windows] == pytest.approx([0.9, 0.3])
    assert [w.face_found_rate for w in windows] == pytest.approx([1.0, 0.5])
    assert [(w.start_s, w.end_s) for w in windows] == [(0.0, 10.0), (10.0, 20.0)]
    result = IdentityResult("ok", None, "clip", "arcface_w600k_r50", "ab" * 32, p, csim=clip_csim(chars),
                            face_found_rate=0.75, n_sampled=100, windows=windows, characters=chars)
    assert result.worst_window.index == 1 and result.worst_window.label == "10-20s"


def test_unsampled_and_interpolated_frames_do_not_count():
    p = protocol(stride_frames=5)
    rows = [(f, 1, [0.8]) for f in range(0, 50, 5)] + [(3, 1, [0.0])]  # frame 3 is not on the stride
    chars, _ = score_faces(_faces(rows), 50, ["r"], p)
    assert chars[0].csim == pytest.approx(0.8) and chars[0].n_sampled == 10


def test_missing_character_is_reported_not_averaged_away():
    p = protocol()
    rows = [(f, 0, [0.8, 0.1]) for f in range(0, 250, 5)]  # only the first character is on screen
    chars, windows = score_faces(_faces(rows), 250, ["a.png", "b.png"], p)
    assert chars[0].csim == pytest.approx(0.8) and not chars[0].missing
    # One track, two references: the optimal assignment gives it to "a"; "b" has nothing.
    assert chars[1].missing and chars[1].csim is None and chars[1].face_found_rate == 0.0
    assert clip_csim(chars) == pytest.approx((0.8 + MISSING_SCORE) / 2)
    assert windows[0].face_found_rate == pytest.approx(0.5)
    result = IdentityResult("ok", None, "c", "dlib_resnet_v1", "cd" * 32, p, csim=clip_csim(chars),
                            face_found_rate=0.5, n_sampled=50, windows=windows, characters=chars)
    assert result.missing_characters == [1]
    rows_out = {(r["metric"], r["window"]): r for r in result.to_rows()}
    assert rows_out[("csim_missing_characters", "all")]["value"] == 1
    assert math.isnan(rows_out[("csim_char1", "all")]["value"])
    assert rows_out[("csim_char0", "all")]["value"] == pytest.approx(0.8)


def test_two_characters_scored_separately():
    p = protocol()
    rows = []
    for f in range(0, 500, 5):
        rows.append((f, 10, [0.2, 0.7]))  # track 10 is character b
        rows.append((f, 11, [0.85, 0.1]))  # track 11 is character a
    chars, _ = score_faces(_faces(rows), 500, ["a", "b"], p)
    assert [c.tracks for c in chars] == [[11], [10]]
    assert [c.csim for c in chars] == pytest.approx([0.85, 0.7])
    assert clip_csim(chars) == pytest.approx(0.775)


def test_rows_follow_the_leaderboard_schema():
    p = protocol()
    chars, windows = score_faces(_faces([(f, 0, [0.5]) for f in range(0, 600, 5)]), 600, ["r"], p)
    res = IdentityResult("ok", None, "clip7", "arcface_w600k_r50", "ef" * 32, p, csim=clip_csim(chars),
                         face_found_rate=1.0, n_sampled=120, windows=windows, characters=chars)
    rows = res.to_rows()
    assert all(LEADERBOARD_KEYS <= set(r) for r in rows)
    assert {r["protocol_version"] for r in rows} == {"csim-v1/fps25/s5/w10"}
    assert {r["backbone_sha256"] for r in rows} == {"ef" * 32}
    windows_seen = {r["window"] for r in rows if r["metric"] == "csim"}
    assert windows_seen == {"all", "0-10s", "10-24s"}  # the 4 s tail joined the second window
    d = res.to_dict()
    for key in ("csim", "csim_windows", "worst_window", "characters", "backbone", "backbone_sha256",
                "protocol_version"):
        assert key in d


def test_aggregate_keeps_backbones_apart_and_counts_unavailable():
    p = protocol()

    def res(v, bb, status="ok"):
        return IdentityResult(status, None if status == "ok" else "no face", f"c{v}", bb, bb[:2] * 32, p,
                              csim=v if status == "ok" else None, face_found_rate=1.0 if status == "ok" else 0.0)

    rows = aggregate([res(0.5, "arcface_w600k_r50"), res(0.7, "arcface_w600k_r50"), res(0.9, "dlib_resnet_v1"),
                      res(0.0, "arcface_w600k_r50", "unavailable")])
    by = {(r["backbone"], r["metric"]): r for r in rows}
    assert by[("arcface_w600k_r50", "csim")]["value"] == pytest.approx(0.6)
    assert by[("arcface_w600k_r50", "csim")]["n"] == 2 and by[("arcface_w600k_r50", "csim")]["stderr"] > 0
    assert by[("arcface_w600k_r50", "clips_unavailable")]["value"] == 1
    assert by[("dlib_resnet_v1", "csim")]["value"] == pytest.approx(0.9)
    assert by[("dlib_resnet_v1", "csim")]["stderr"] is None
