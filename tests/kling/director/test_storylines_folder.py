"""kling.director.batch.read_storylines: what evaluation reads back from the director's folder."""

from __future__ import annotations

import json

from kling.director.batch import read_storylines


def test_only_directed_readable_storylines_are_read(tmp_path):
    shots = {"shots": [{"t_start": 0.0, "t_end": 2.0, "head_motion": "nod"}]}
    (tmp_path / "ok.json").write_text(json.dumps({"status": "ok", "storyline": shots}))
    (tmp_path / "degraded.json").write_text(json.dumps({"status": "degraded", "storyline": shots}))
    (tmp_path / "failed.json").write_text(json.dumps({"status": "failed", "reason": "endpoint down"}))
    (tmp_path / "truncated.json").write_text('{"status": "ok", "storyl')
    (tmp_path / "list.json").write_text("[]")
    assert read_storylines(tmp_path) == {"ok": shots, "degraded": shots}
    assert read_storylines(tmp_path / "absent") == {}
