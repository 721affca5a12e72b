"""Benchmark specs: a YAML file listing cases (reference image(s), driving audio, instruction, duration class,
language, optional ground-truth video), loaded into a `Benchmark` and validated with errors that name the
case and the field.

Paths in a spec are relative to the spec file's folder (or absolute). Builders of specs (the demo benchmark,
HDTF-style and long-video recipes from a folder of clips) live in `eval.benchmark_recipes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kling.atomic import atomic_write_bytes
from kling.clock import SAMPLE_RATE
from kling.hashing import config_hash

SPEC_VERSION = "benchmark_spec/1"
SPEC_FILE = "benchmark.yaml"  # a spec's name in its benchmark folder (kling.paths.Layout.benchmark_dir)
# Duration classes by the length of the driving audio, in seconds: (nominal, lower bound, upper bound].
DURATION_CLASSES: dict[str, tuple[float, float, float]] = {
    "short": (10.0, 0.0, 30.0),
    "1min": (60.0, 30.0, 180.0),
    "5min": (300.0, 180.0, 600.0),
}
CASE_FIELDS = {"id", "reference", "audio", "instruction", "duration_class", "language", "ground_truth",
               "identity", "duration_s", "tags", "source"}
REQUIRED_CASE_FIELDS = ("id", "reference", "audio", "instruction", "duration_class")
TOP_FIELDS = {"name", "version", "description", "language", "cases", "spec_version", "recipe"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
AUDIO_EXTS = {".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus"} | VIDEO_EXTS
# Case ids name files (`<case_id>.mp4` in a system folder), so they must be safe file names.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class SpecIssue:
    case: str | None  # case id (or "#<index>" when the id itself is bad); None for top-level fields
    field: str
    message: str

    def __str__(self) -> str:
        where = f"case {self.case!r} field {self.field!r}" if self.case is not None else f"field {self.field!r}"
        return f"{where}: {self.message}"


class BenchmarkSpecError(ValueError):
    """A spec file with one or more problems; `issues` lists them all (not only the first)."""

    def __init__(self, path: str | Path | None, issues: list[SpecIssue]) -> None:
        self.path = None if path is None else str(path)
        self.issues = issues
        head = f"{self.path}: " if self.path else ""
        super().__init__(head + f"{len(issues)} problem(s) in benchmark spec\n" + "\n".join(f"  - {i}" for i in issues))


@dataclass(frozen=True)
class Case:
    id: str
    reference: tuple[Path, ...]
    audio: Path
    instruction: str
    duration_class: str
    language: str
    ground_truth: Path | None = None
    identity: str | None = None  # who is in the reference (pairs cases for the other-identity control)
    duration_s: float | None = None  # driving audio length when known
    tags: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)  # provenance (corpus clip, chained clips, file)


@dataclass
class Benchmark:
    name: str
    version: str
    cases: list[Case]
    root: Path  # folder that relative paths resolve against
    description: str = ""
    language: str = "en"
    recipe: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def case_ids(self) -> list[str]:
        return [c.id for c in self.cases]

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(f"benchmark {self.name!r} has no case {case_id!r}")

    def spec_hash(self) -> str:
        return config_hash(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        def rel(p: Path | None) -> str | None:
            if p is None:
                return None
            try:
                return Path(p).resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                return str(Path(p).resolve())

        cases = []
        for c in self.cases:
            d: dict[str, Any] = {"id": c.id, "reference": [rel(r) for r in c.reference], "audio": rel(c.audio),
                                 "instruction": c.instruction, "duration_class": c.duration_class,
                                 "language": c.language}
            if c.ground_truth is not None:
                d["ground_truth"] = rel(c.ground_truth)
            for k in ("identity", "duration_s"):
                if getattr(c, k) is not None:
                    d[k] = getattr(c, k)
            if c.tags:
                d["tags"] = list(c.tags)
            if c.source:
                d["source"] = c.source
            cases.append(d)
        out = {"spec_version": SPEC_VERSION, "name": self.name, "version": self.version,
               "description": self.description, "language": self.language, "cases": cases}
        if self.recipe:
            out["recipe"] = self.recipe
        return out

    def save(self, path: str | Path | None = None) -> Path:
        """Write the spec as YAML (atomically); relative paths are relative to `root`."""
        path = Path(path or self.path or self.root / SPEC_FILE)
        atomic_write_bytes(path, yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True).encode())
        self.path = path
        return path


def duration_class_for(duration_s: float) -> str:
    for name, (_, lo, hi) in DURATION_CLASSES.items():
        if lo < duration_s <= hi:
            return name
    raise ValueError(f"duration {duration_s:.1f}s is outside every duration class {list(DURATION_CLASSES)}")


def load_benchmark(path: str | Path, check_files: bool = True, check_media: bool = False) -> Benchmark:
    """Parse and validate a spec file. Raises BenchmarkSpecError listing every problem found.

    `check_files`: referenced files must exist. `check_media`: also open them (audio decodes, ground truth
    is a readable video, audio length matches the duration class) - slower, for `kling benchmark validate`.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BenchmarkSpecError(path, [SpecIssue(None, "file", "spec file not found")]) from None
    except yaml.YAMLError as exc:
        raise BenchmarkSpecError(path, [SpecIssue(None, "file", f"not valid YAML: {exc}")]) from None
    bench, issues = parse_spec(data, path.parent, check_files=check_files, check_media=check_media)
    if issues:
        raise BenchmarkSpecError(path, issues)
    bench.path = path
    return bench


def parse_spec(data: Any, root: Path, check_files: bool = True,
               check_media: bool = False) -> tuple[Benchmark | None, list[SpecIssue]]:
    """Validate a parsed spec; returns (benchmark or None, issues)."""
    if not isinstance(data, dict):
        return None, [SpecIssue(None, "file", f"expected a mapping at the top level, got {type(data).__name__}")]
    issues: list[SpecIssue] = []
    for k in sorted(set(data) - TOP_FIELDS):
        issues.append(SpecIssue(None, k, f"unknown field (allowed: {sorted(TOP_FIELDS)})"))
    name = data.get("name")
    if not isinstance(name, str) or not ID_RE.match(name):
        issues.append(SpecIssue(None, "name", f"required; letters, digits, '_', '.', '-' (got {name!r})"))
    language = data.get("language", "en")
    if not isinstance(language, str) or not LANG_RE.match(language):
        issues.append(SpecIssue(None, "language", f"expected a language tag like 'en' or 'zh-CN', got {language!r}"))
        language = "en"
    cases_data = data.get("cases")
    if not isinstance(cases_data, list) or not cases_data:
        issues.append(SpecIssue(None, "cases", "required: a non-empty list of cases"))
        cases_data = []
    cases, seen = [], set()
    for i, cd in enumerate(cases_data):
        case, case_issues = _parse_case(cd, i, root, language, check_files, check_media)
        issues += case_issues
        cid = cd.get("id") if isinstance(cd, dict) else None
        if isinstance(cid, str) and cid:
            if cid in seen:
                issues.append(SpecIssue(cid, "id", f"duplicate case id (case #{i})"))
            seen.add(cid)
        if case is not None:
            cases.append(case)
    if issues:
        return None, issues
    return Benchmark(name=name, version=str(data.get("version", "1")), cases=cases, root=Path(root),
                     description=str(data.get("description") or ""), language=language,
                     recipe=dict(data.get("recipe") or {})), []


def _parse_case(cd: Any, index: int, root: Path, default_language: str, check_files: bool,
                check_media: bool) -> tuple[Case | None, list[SpecIssue]]:
    if not isinstance(cd, dict):
        return None, [SpecIssue(f"#{index}", "case", f"expected a mapping, got {type(cd).__name__}")]
    cid = cd.get("id")
    label = cid if isinstance(cid, str) and cid else f"#{index}"
    issues: list[SpecIssue] = []
    bad = lambda f, m: issues.append(SpecIssue(label, f, m))  # noqa: E731
    for k in sorted(set(cd) - CASE_FIELDS):
        bad(k, f"unknown field (allowed: {sorted(CASE_FIELDS)})")
    for k in REQUIRED_CASE_FIELDS:
        if cd.get(k) in (None, "", []):
            bad(k, "required field is missing or empty")
    if isinstance(cid, str) and cid and not ID_RE.match(cid):
        bad("id", "must be a safe file name: letters, digits, '_', '.', '-' (at most 128)")
    elif cid is not None and not isinstance(cid, str):
        bad("id", f"expected a string, got {type(cid).__name__}")

    refs = cd.get("reference")
    refs = [refs] if isinstance(refs, str) else refs
    ref_paths: list[Path] = []
    if refs not in (None, "", []):
        if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
            bad("reference", "expected a path or a list of paths to images")
        else:
            ref_paths = [_path("reference", r, root, IMAGE_EXTS, check_files, bad) for r in refs]
    audio = _path("audio", cd["audio"], root, AUDIO_EXTS, check_files, bad) if isinstance(cd.get("audio"), str) and cd["audio"] else None
    if cd.get("audio") not in (None, "") and not isinstance(cd.get("audio"), str):
        bad("audio", "expected a path")
    gt = None
    if cd.get("ground_truth") is not None:
        if not isinstance(cd["ground_truth"], str) or not cd["ground_truth"]:
            bad("ground_truth", "expected a path to a video")
        else:
            gt = _path("ground_truth", cd["ground_truth"], root, VIDEO_EXTS, check_files, bad)
    instr = cd.get("instruction")
    if instr is not None and not (isinstance(instr, str) and instr.strip()):
        bad("instruction", "expected non-empty text")
    dclass = cd.get("duration_class")
    if dclass is not None and dclass not in DURATION_CLASSES:
        bad("duration_class", f"expected one of {list(DURATION_CLASSES)}, got {dclass!r}")
    lang = cd.get("language", default_language)
    if not isinstance(lang, str) or not LANG_RE.match(lang):
        bad("language", f"expected a language tag like 'en' or 'zh-CN', got {lang!r}")
    dur = cd.get("duration_s")
    if dur is not None and (isinstance(dur, bool) or not isinstance(dur, (int, float)) or dur <= 0):
        bad("duration_s", f"expected a positive number of seconds, got {dur!r}")
    ident = cd.get("identity")
    if ident is not None and not isinstance(ident, (str, int)):
        bad("identity", f"expected a name, got {type(ident).__name__}")
    tags = cd.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        bad("tags", "expected a list of strings")
    source = cd.get("source", {})
    if not isinstance(source, dict):
        bad("source", "expected a mapping")
    if check_media and not issues:
        dur = _check_media(audio, gt, dclass, dur, bad)
    if issues:
        return None, issues
    return Case(id=cid, reference=tuple(ref_paths), audio=audio, instruction=instr.strip(), duration_class=dclass,
                language=lang, ground_truth=gt, identity=None if ident is None else str(ident),
                duration_s=None if dur is None else float(dur), tags=tuple(tags), source=dict(source)), []


def _path(fname: str, value: str, root: Path, exts: set[str], check_files: bool, bad) -> Path:
    p = Path(value).expanduser()
    p = p if p.is_absolute() else Path(root) / p
    if p.suffix.lower() not in exts:
        bad(fname, f"{value}: unexpected file type {p.suffix!r} (expected one of {sorted(exts)})")
    elif check_files and not p.is_file():
        bad(fname, f"file not found: {value}")
    return p


def _check_media(audio: Path, gt: Path | None, dclass: str, dur: float | None, bad) -> float | None:
    """Open the audio (and ground truth) and check the duration class; returns the audio length."""
    from kling.io.audio import read_audio
    from kling.io.errors import MediaError
    from kling.io.probe import probe

    try:
        samples = read_audio(audio)
    except MediaError as exc:
        bad("audio", f"unreadable ({exc.reason}): {exc}")
        return dur
    if samples is None or samples.size == 0:
        bad("audio", f"no audio stream in {audio.name}")
        return dur
    length = samples.size / SAMPLE_RATE
    _, lo, hi = DURATION_CLASSES[dclass]
    if not lo < length <= hi:
        bad("duration_class", f"{dclass!r} needs audio in ({lo:g}, {hi:g}] s but {audio.name} lasts {length:.1f} s")
    if gt is not None:
        try:
            info = probe(gt)
            if not info.width:
                bad("ground_truth", f"no video stream in {gt.name}")
        except MediaError as exc:
            bad("ground_truth", f"unreadable ({exc.reason}): {exc}")
    return length if dur is None else dur
