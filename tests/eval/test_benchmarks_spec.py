"""Benchmark spec files: parsing, round trip, and errors that name the case and the field."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from eval.benchmarks import BenchmarkSpecError, duration_class_for, load_benchmark
from kling.io.encode import write_wav
from kling.paths import repo_root


def _spec(tmp_path, cases, **top):
    (tmp_path / "refs").mkdir(exist_ok=True)
    (tmp_path / "refs" / "a.png").write_bytes(b"png")
    write_wav(tmp_path / "a.wav", np.zeros(16000 * 2, np.float32))
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "cases": cases} | top))
    return path


GOOD = {"id": "a1", "reference": "refs/a.png", "audio": "a.wav", "instruction": "talks", "duration_class": "short"}


def test_valid_spec_round_trips(tmp_path):
    path = _spec(tmp_path, [GOOD, GOOD | {"id": "a2", "reference": ["refs/a.png"], "language": "zh-CN", "identity": "anna"}])
    b = load_benchmark(path)
    assert b.case_ids == ["a1", "a2"] and b.case("a1").audio == tmp_path / "a.wav"
    assert b.case("a1").language == "en" and b.case("a2").language == "zh-CN" and b.case("a2").identity == "anna"
    b.save(tmp_path / "copy.yaml")
    again = load_benchmark(tmp_path / "copy.yaml")
    assert again.to_dict() == b.to_dict() and again.spec_hash() == b.spec_hash()
    assert yaml.safe_load((tmp_path / "copy.yaml").read_text())["cases"][0]["audio"] == "a.wav"  # stays relative


def test_every_problem_names_case_and_field(tmp_path):
    cases = [
        GOOD | {"duration_class": "2min"},
        GOOD | {"id": "bad id!", "audio": "nope.wav"},
        GOOD | {"id": "a3", "ground_truth": "gt.txt", "colour": "red"},
        {"id": "a4", "reference": "refs/a.png", "audio": "a.wav", "duration_class": "short"},
        GOOD,  # duplicate of the first id
        "not a mapping",
    ]
    with pytest.raises(BenchmarkSpecError) as err:
        load_benchmark(_spec(tmp_path, cases, language="English"))
    got = {(i.case, i.field) for i in err.value.issues}
    assert got == {(None, "language"), ("a1", "duration_class"), ("bad id!", "id"), ("bad id!", "audio"),
                   ("a3", "ground_truth"), ("a3", "colour"), ("a4", "instruction"), ("a1", "id"), ("#5", "case")}
    text = str(err.value)
    assert "case 'a1' field 'duration_class': expected one of ['short', '1min', '5min'], got '2min'" in text
    assert "case 'bad id!' field 'audio': file not found: nope.wav" in text
    assert "case 'a4' field 'instruction': required field is missing or empty" in text


def test_file_level_errors(tmp_path):
    with pytest.raises(BenchmarkSpecError, match="spec file not found"):
        load_benchmark(tmp_path / "none.yaml")
    (tmp_path / "x.yaml").write_text("name: [unclosed")
    with pytest.raises(BenchmarkSpecError, match="not valid YAML"):
        load_benchmark(tmp_path / "x.yaml")
    (tmp_path / "y.yaml").write_text("name: y\ncases: []\n")
    with pytest.raises(BenchmarkSpecError, match="field 'cases': required"):
        load_benchmark(tmp_path / "y.yaml")


def test_media_check_compares_audio_with_duration_class(tmp_path):
    path = _spec(tmp_path, [GOOD | {"duration_class": "1min"}])
    load_benchmark(path)  # files exist: fine without opening them
    with pytest.raises(BenchmarkSpecError, match=r"'1min' needs audio in \(30, 180\] s but a.wav lasts 2.0 s"):
        load_benchmark(path, check_media=True)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....garbage")
    with pytest.raises(BenchmarkSpecError, match="case 'a1' field 'audio': unreadable"):
        load_benchmark(_spec(tmp_path, [GOOD | {"audio": "broken.wav"}]), check_media=True)
    assert load_benchmark(_spec(tmp_path, [GOOD]), check_media=True).case("a1").duration_s == pytest.approx(2.0)


def test_duration_classes_and_tracked_example():
    assert [duration_class_for(s) for s in (5, 30, 31, 180, 300, 600)] == ["short", "short", "1min", "1min", "5min", "5min"]
    with pytest.raises(ValueError, match="outside every duration class"):
        duration_class_for(601)
    b = load_benchmark(repo_root() / "datasets" / "benchmarks" / "example.yaml", check_files=False)
    assert b.case_ids == ["anna_interview_000", "li_lecture_5min"] and b.case("li_lecture_5min").ground_truth is None
