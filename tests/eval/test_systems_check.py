"""Systems: descriptor, import of external outputs, per-case missing / broken / short reporting."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from eval.benchmarks import Benchmark, Case
from eval.systems import (DESCRIPTOR, SystemDescriptor, SystemSpecError, check_system, import_system, load_system,
                          write_descriptor)
from kling.io.encode import write_video


def _bench(tmp_path, ids=("a", "b", "c", "d")) -> Benchmark:
    cases = [Case(id=i, reference=(tmp_path / "r.png",), audio=tmp_path / "x.wav", instruction="talks",
                  duration_class="short", language="en", duration_s=2.0) for i in ids]
    return Benchmark(name="mini", version="1", cases=cases, root=tmp_path)


def _video(path, seconds=2.0):
    return write_video(path, np.full((int(seconds * 25), 32, 32, 3), 90, np.uint8), fps=25, preset="ultrafast")


def test_import_and_check_report_every_case(tmp_path):
    ext = tmp_path / "heygen_export"
    _video(ext / "a.mp4")
    _video(ext / "b.mp4", seconds=1.0)  # half as long as its audio
    (ext / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)  # broken
    _video(ext / "extra.mp4")
    with pytest.raises(SystemSpecError, match=r"match no case of benchmark 'mini': \['extra'\]"):
        import_system(ext, tmp_path / "sys", "heygen", "2026-10", "web export", benchmark=_bench(tmp_path))
    s = import_system(ext, tmp_path / "sys", "heygen", "2026-10", "web export")
    assert s.descriptor == SystemDescriptor("heygen", "2026-10", "web export")
    rep = check_system(load_system(tmp_path / "sys"), _bench(tmp_path))
    st = {c.case_id: c.status for c in rep.cases}
    assert st == {"a": "ok", "b": "short", "c": "broken", "d": "missing"}
    assert rep.ok == ["a"] and rep.extra_files == ["extra"]
    by = {c.case_id: c for c in rep.cases}
    assert by["c"].reason.split(":")[0] in ("unreadable", "truncated") and "no d.<video>" in by["d"].reason
    rows = {r["clip_id"]: r for r in rep.to_rows()}
    assert rows["a"]["value"] == 1.0 and rows["d"]["value"] == 0.0 and rows["d"]["reason"].startswith("missing")
    text = rep.summary()
    assert "1 broken, 1 missing, 1 ok, 1 short" in text and "d: missing" in text


def test_import_with_mapping_replaces_and_links(tmp_path):
    ext = tmp_path / "omni"
    _video(ext / "output_0001.mov")
    _video(ext / "output_0002.mov")
    s = import_system(ext, tmp_path / "sys", "omnihuman", "1.5", "api", mapping={"output_0001.mov": "a"}, link=True)
    assert list(s.videos()) == ["a"] and s.video("a").suffix == ".mov"
    _video(ext / "a.mp4")
    s = import_system(ext, tmp_path / "sys", "omnihuman", "1.5", "api", mapping={"a.mp4": "a"})
    assert s.videos() == {"a": [tmp_path / "sys" / "a.mp4"]}  # re-import replaced the .mov
    with pytest.raises(SystemSpecError, match="not in"):
        import_system(ext, tmp_path / "sys", "o", "1", "api", mapping={"nope.mp4": "a"})
    with pytest.raises(SystemSpecError, match="two files for case 'a'"):
        import_system(ext, tmp_path / "sys", "o", "1", "api", mapping={"a.mp4": "a", "output_0002.mov": "a"})


def test_duplicate_outputs_are_reported(tmp_path):
    _video(tmp_path / "s" / "a.mp4")
    _video(tmp_path / "s" / "a.mkv")
    write_descriptor(tmp_path / "s", SystemDescriptor("s", "1", "ours"))
    rep = check_system(load_system(tmp_path / "s"), _bench(tmp_path, ids=("a",)))
    assert rep.cases[0].status == "duplicate"


def test_descriptor_errors_name_the_field(tmp_path):
    (tmp_path / "s").mkdir()
    with pytest.raises(SystemSpecError, match="missing descriptor"):
        load_system(tmp_path / "s")
    for data, msg in (({"name": "x", "version": 1}, "'source' is required"),
                      ({"name": "a b", "version": 1, "source": "s"}, "'name' must use"),
                      ({"name": "x", "version": 1, "source": "s", "kind": "robot"}, "'kind' must be one of"),
                      ({"name": "x", "version": 1, "source": "s", "url": "u"}, r"unknown field\(s\) \['url'\]")):
        (tmp_path / "s" / DESCRIPTOR).write_text(yaml.safe_dump(data))
        with pytest.raises(SystemSpecError, match=msg):
            load_system(tmp_path / "s")
    (tmp_path / "s" / DESCRIPTOR).write_text(yaml.safe_dump({"name": "x", "version": 2, "source": "s"}))
    assert load_system(tmp_path / "s").descriptor.version == "2"
