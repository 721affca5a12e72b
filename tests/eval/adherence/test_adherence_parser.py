"""The rule-based instruction parser and the assertion model."""

from __future__ import annotations

import pytest

from eval.adherence.assertions import Assertion, assertion_from_dict, load_case, parse_instruction


def _ids(text, duration=20.0):
    return {(a.kind, a.value, a.negated, a.span(duration)) for a in parse_instruction(text)}


def test_vocabulary_phrases_and_time_spans():
    got = _ids("A woman smiles and nods for the first 5 seconds, then the camera zooms in.")
    assert got == {("emotion", "smiling", False, (0.0, 5.0)), ("head_motion", "nod", False, (0.0, 5.0)),
                   ("camera", "zoom_in", False, (0.0, 20.0))}
    assert _ids("From 3 to 8 s she is happy. After 10 s the camera pulls back. In the last 2 seconds her mouth "
                "stays closed.") == {("emotion", "happy", False, (3.0, 8.0)),
                                     ("camera", "zoom_out", False, (10.0, 20.0)),
                                     ("mouth", "closed", False, (18.0, 20.0))}


def test_then_without_times_orders_the_clip():
    got = sorted(parse_instruction("He nods, then shakes his head, then keeps his head still."),
                 key=lambda a: a.span(30.0))
    assert [(a.value, a.span(30.0)) for a in got] == [("nod", (0.0, 10.0)), ("shake", (10.0, 20.0)),
                                                      ("still", (20.0, 30.0))]


def test_people_gaze_placement_camera_and_negation():
    got = _ids("Two people talk; the man on the left looks at the camera. The camera is static. "
               "She does not nod. The camera pans right.")
    assert ("people_count", "2", False, (0.0, 20.0)) in got
    assert ("mouth", "speaking", False, (0.0, 20.0)) in got
    assert ("placement", "left", False, (0.0, 20.0)) in got
    assert ("gaze", "camera", False, (0.0, 20.0)) in got
    assert ("camera", "static", False, (0.0, 20.0)) in got
    assert ("head_motion", "nod", True, (0.0, 20.0)) in got
    assert ("camera", "pan_right", False, (0.0, 20.0)) in got
    assert not any(k == "placement" and v == "right" for k, v, *_ in got)  # "pans right" is not placement
    assert _ids("She looks to the left.") == {("gaze", "left", False, (0.0, 20.0))}
    assert _ids("A person alone, at the end she looks away") == {("people_count", "1", False, (0.0, 20.0)),
                                                                 ("gaze", "away", False, (17.0, 20.0))}


def test_text_outside_the_vocabulary_gives_nothing():
    assert parse_instruction("A beautiful sunset over the ocean.") == []
    assert parse_instruction("") == []


def test_assertion_model_validates_and_names_itself():
    a = Assertion("head_motion", "nod", 2.0, 6.0)
    assert a.checker == "measured" and a.is_event and a.id == "head_motion=nod@2-6"
    assert Assertion("emotion", "happy").checker == "semantic"
    assert Assertion("camera", "static", -4.0).span(10.0) == (6.0, 10.0)
    assert Assertion("camera", "static", 0.0, 50.0).span(10.0) == (0.0, 10.0)
    with pytest.raises(ValueError, match="unknown assertion kind"):
        Assertion("lighting", "dark")
    with pytest.raises(ValueError, match="unknown value"):
        Assertion("head_motion", "jump")
    assert assertion_from_dict({"kind": "camera", "value": "zoom in", "start_s": 1}).value == "zoom_in"
    assert assertion_from_dict({"kind": "people_count", "value": 2}).value == "2"


def test_case_file_with_explicit_assertions_and_storyline(tmp_path):
    case = tmp_path / "case.yaml"
    case.write_text(
        "instruction: she nods\n"
        "assertions:\n"
        "  - {kind: head_motion, value: shake, start_s: 1, end_s: 4}\n"
        "storyline:\n"
        "  - {start_s: 4, end_s: 8, text: the camera zooms in}\n"
    )
    c = load_case(case)
    assert [(a.kind, a.value, a.start_s, a.end_s, a.source) for a in c["assertions"]] == [
        ("head_motion", "shake", 1.0, 4.0, "explicit"), ("camera", "zoom_in", 4.0, 8.0, "storyline")]
    text_only = tmp_path / "t.json"
    text_only.write_text('{"instruction": "He smiles."}')
    assert load_case(text_only) == {"instruction": "He smiles.", "assertions": [], "source": "text"}
