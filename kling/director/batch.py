"""Storylines of many cases (a benchmark): one JSON file per case, written atomically; a case that cannot be
directed gets a complete failure record with its reason instead, and the others go on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from kling.atomic import atomic_write_json
from kling.director.director import DirectorConfig, DirectorError, direct
from kling.llm import LLMClient, LLMConfig


@dataclass(frozen=True)
class CaseInput:
    case_id: str
    images: tuple[Path, ...]
    audios: tuple[Path, ...]
    instruction: str


def direct_cases(cases: Iterable[CaseInput], out_dir: str | Path, llm: LLMConfig,
                 config: DirectorConfig = DirectorConfig()) -> dict:
    """<out_dir>/<case_id>.json per case ({"status": ok|degraded|failed, ...}); returns counts and timings."""
    out_dir = Path(out_dir)
    counts = {"ok": 0, "degraded": 0, "failed": 0}
    seconds, reasons = {}, {}
    for case in cases:
        t0 = time.perf_counter()
        client = LLMClient(llm)  # one transcript per case
        try:
            res = direct(list(case.images), list(case.audios), case.instruction, client, config)
            res.seconds["total"] = round(time.perf_counter() - t0, 3)
            res.write(out_dir / f"{case.case_id}.json")
            status = res.storyline.status
        except DirectorError as exc:
            atomic_write_json(out_dir / f"{case.case_id}.json",
                              {"status": "failed", "reason": exc.reason, "dialogue": exc.transcript})
            status, reasons[case.case_id] = "failed", exc.reason
        counts[status] += 1
        seconds[case.case_id] = round(time.perf_counter() - t0, 3)
    return {"counts": counts, "seconds": seconds, "failures": reasons, "backend": LLMClient(llm).label}


def read_storylines(folder: str | Path) -> dict[str, dict]:
    """case id -> storyline (as written by direct_cases) of every case in `folder` that was directed (ok or
    degraded); failed cases, unreadable files and a missing folder give nothing (the case is then evaluated
    without storyline adherence, as an undirected one)."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("status") in ("ok", "degraded") and isinstance(data.get("storyline"), dict):
            out[path.stem] = data["storyline"]
    return out
