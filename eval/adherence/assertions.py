"""Checkable assertions about a video, and the offline rule-based parser over a controlled vocabulary.

An instruction ("She smiles and nods for the first 5 seconds, then the camera zooms in") becomes a list of
``Assertion``s: a kind, a value from the vocabulary, a time span, and whether it is negated. Each kind is checked
either by a *measured* checker (face tracks, landmarks, head pose, voice activity) or by the *semantic* judge.

Spans: ``start_s``/``end_s`` in seconds; ``end_s=None`` means "to the end"; a negative number counts back from
the end (``start_s=-3, end_s=None`` is the last 3 s). Resolved against the video length by ``Assertion.span``.

Parser rules (documented because they decide what is checked):

- text splits into sentences (``.;!?``), clauses at ``then`` and parts at commas; every vocabulary phrase
  found gives one assertion; a time expression holds for its part and the following parts of its clause;
- time expressions: ``from A to B s``, ``between A and B s``, ``A-B s``, ``(in|for|during) the first N s``,
  ``(in|for|during) the last N s``, ``after N s``, ``(until|before) N s``, ``at the beginning|start`` (first
  ``EDGE_S``), ``at the end`` (last ``EDGE_S``);
- clauses of one sentence chained by ``then`` with no time expression split the clip into equal consecutive
  parts, so the order is checked; otherwise an assertion spans the whole clip;
- ``not``/``n't``/``never``/``without``/``no`` within three words before a phrase negates it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

MEASURED = "measured"
SEMANTIC = "semantic"
EDGE_S = 3.0  # "at the beginning" / "at the end"

# kind -> (checker, allowed values). people_count values are small integers.
VOCABULARY: dict[str, tuple[str, tuple[str, ...]]] = {
    "emotion": (SEMANTIC, ("happy", "sad", "angry", "surprised", "neutral", "fearful", "disgusted", "smiling",
                           "laughing", "frowning")),
    "head_motion": (MEASURED, ("nod", "shake", "still")),
    "gaze": (SEMANTIC, ("camera", "away", "left", "right", "up", "down")),
    "mouth": (MEASURED, ("speaking", "closed")),
    "camera": (MEASURED, ("static", "zoom_in", "zoom_out", "pan_left", "pan_right")),
    "people_count": (MEASURED, ("0", "1", "2", "3", "4", "5")),
    "placement": (MEASURED, ("left", "center", "right")),
}
# Event kinds happen somewhere in their span; the others must hold over it.
EVENT_VALUES = {("head_motion", "nod"), ("head_motion", "shake"), ("camera", "zoom_in"), ("camera", "zoom_out"),
                ("camera", "pan_left"), ("camera", "pan_right")}


@dataclass(frozen=True)
class Assertion:
    kind: str
    value: str
    start_s: float = 0.0
    end_s: float | None = None
    negated: bool = False
    text: str = ""  # the phrase it came from
    character: int | None = None  # which reference person; None = the main (largest) face
    source: str = "explicit"  # "explicit" | "rules" | "llm"

    def __post_init__(self):
        if self.kind not in VOCABULARY:
            raise ValueError(f"unknown assertion kind {self.kind!r}; vocabulary: {sorted(VOCABULARY)}")
        if self.value not in VOCABULARY[self.kind][1]:
            raise ValueError(f"{self.kind}: unknown value {self.value!r}; allowed: {VOCABULARY[self.kind][1]}")

    @property
    def checker(self) -> str:
        return VOCABULARY[self.kind][0]

    @property
    def is_event(self) -> bool:
        return (self.kind, self.value) in EVENT_VALUES

    @property
    def id(self) -> str:
        end = "end" if self.end_s is None else f"{self.end_s:g}"
        return f"{'not_' if self.negated else ''}{self.kind}={self.value}@{self.start_s:g}-{end}"

    def span(self, duration_s: float) -> tuple[float, float]:
        """The span clipped to [0, duration]."""
        a = self.start_s if self.start_s >= 0 else duration_s + self.start_s
        b = duration_s if self.end_s is None else (self.end_s if self.end_s >= 0 else duration_s + self.end_s)
        a, b = max(0.0, min(a, duration_s)), max(0.0, min(b, duration_s))
        return a, max(a, b)

    def to_dict(self) -> dict:
        return asdict(self) | {"id": self.id, "checker": self.checker}


def assertion_from_dict(d: dict, source: str = "explicit") -> Assertion:
    """An assertion from a benchmark spec entry: kind, value, optional start_s, end_s, negated, character."""
    value = d.get("value")
    if value is None:
        raise ValueError(f"assertion {d!r} has no value")
    return Assertion(
        kind=str(d["kind"]),
        value=str(value).strip().lower().replace(" ", "_").replace("-", "_") if d["kind"] != "people_count"
        else str(int(value)),
        start_s=float(d.get("start_s") or 0.0),
        end_s=None if d.get("end_s") is None else float(d["end_s"]),
        negated=bool(d.get("negated", False)),
        text=str(d.get("text", "")),
        character=None if d.get("character") is None else int(d["character"]),
        source=str(d.get("source", source)),
    )


# ------------------------------------------------------------------------------------------- phrase rules

_NUM = {"no one": 0, "nobody": 0, "one": 1, "a single": 1, "single": 1, "two": 2, "both": 2, "three": 3,
        "four": 4, "five": 5}
_NUMBER = r"(\d+|one|two|three|four|five|a single|single)"

# (regex, kind, value) in order; value None means computed from the match (people_count).
_RULES: list[tuple[re.Pattern, str, str | None]] = [
    (re.compile(p, re.I), k, v)
    for p, k, v in [
        (r"\bnod(s|ding|ded)?\b", "head_motion", "nod"),
        (r"\bshak(e|es|ing)\s+(his|her|their|the|its)?\s*head\b|\bhead\s*shak(e|es|ing)\b", "head_motion",
         "shake"),
        (r"\b(head|himself|herself|themselves)\b[^.]{0,20}\b(still|steady|motionless)\b|\b(stays|remains|keeps|"
         r"holds)\s+(perfectly\s+|completely\s+)?(still|motionless)\b|\bmotionless\b", "head_motion", "still"),
        (r"\b(happy|happily|joyful|cheerful)\b", "emotion", "happy"),
        (r"\b(sad|sadly|sorrowful|unhappy|melancholy)\b", "emotion", "sad"),
        (r"\b(angry|angrily|furious|annoyed)\b", "emotion", "angry"),
        (r"\b(surprised|astonished|shocked)\b", "emotion", "surprised"),
        (r"\b(neutral|expressionless|calm)\b", "emotion", "neutral"),
        (r"\b(fearful|scared|afraid|frightened)\b", "emotion", "fearful"),
        (r"\b(disgusted)\b", "emotion", "disgusted"),
        (r"\bsmil(e|es|ing)\b", "emotion", "smiling"),
        (r"\blaugh(s|ing)?\b", "emotion", "laughing"),
        (r"\bfrown(s|ing)?\b", "emotion", "frowning"),
        (r"\b(looks?|looking|gazes?|gazing|stares?|staring)\s+(directly\s+|straight\s+)?(at|into)\s+the\s+"
         r"(camera|lens|viewer)\b|\beye contact\b", "gaze", "camera"),
        (r"\b(looks?|looking|glances?|glancing)\s+away\b", "gaze", "away"),
        (r"\b(looks?|looking|glances?|glancing)\s+(to\s+the\s+)?left\b", "gaze", "left"),
        (r"\b(looks?|looking|glances?|glancing)\s+(to\s+the\s+)?right\b", "gaze", "right"),
        (r"\b(looks?|looking|glances?|glancing)\s+up(ward)?\b", "gaze", "up"),
        (r"\b(looks?|looking|glances?|glancing)\s+down(ward)?\b", "gaze", "down"),
        (r"\b(speaks?|speaking|talks?|talking|says|saying|sings?|singing|explains?|explaining)\b", "mouth",
         "speaking"),
        (r"\bmouth\s+(stays\s+|remains\s+|is\s+|kept\s+)?closed\b|\b(silent|silently)\b", "mouth", "closed"),
        (r"\bzoom(s|ing|ed)?\s+in\b|\b(push(es|ing)?|dolly|dollies|dollying)\s+in\b", "camera", "zoom_in"),
        (r"\bzoom(s|ing|ed)?\s+out\b|\bpull(s|ing)?\s+(back|out)\b|\bdolly\s+out\b", "camera", "zoom_out"),
        (r"\bpan(s|ning|ned)?\s+(to\s+the\s+)?left\b", "camera", "pan_left"),
        (r"\bpan(s|ning|ned)?\s+(to\s+the\s+)?right\b", "camera", "pan_right"),
        (r"\b(static|fixed|locked[- ]off|still|stationary|steady)\s+(camera|shot)\b|\bcamera\s+(is\s+|stays\s+|"
         r"remains\s+)?(static|fixed|still|stationary|steady)\b", "camera", "static"),
        (rf"\b{_NUMBER}\s+(people|persons|person|speakers?|characters?|faces?|men|women)\b", "people_count", None),
        (r"\b(alone|by (him|her|them)self|nobody else)\b", "people_count", "1"),
        (r"\b(on|to|at)\s+the\s+left(\s+side)?(\s+of\s+the\s+(frame|screen|image))?\b", "placement", "left"),
        (r"\b(on|to|at)\s+the\s+right(\s+side)?(\s+of\s+the\s+(frame|screen|image))?\b", "placement", "right"),
        (r"\b(in\s+the\s+(center|centre|middle)|centered|centred)\b", "placement", "center"),
    ]
]
# "looks to the left" is gaze, not placement: placement phrases right after a gaze verb are skipped.
_GAZE_BEFORE = re.compile(r"\b(looks?|looking|glances?|glancing|turns?|turning|pans?|panning|panned)\s*$", re.I)
_NEGATION = re.compile(r"\b(not|never|without|no)\b|n't\b", re.I)

_SECONDS = r"\s*(?:s|sec|secs|seconds?)\b"
_FLOAT = r"(\d+(?:\.\d+)?)"
_TIME_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(rf"\bfrom\s+{_FLOAT}(?:{_SECONDS})?\s+(?:to|until|till)\s+{_FLOAT}{_SECONDS}", re.I), "range"),
    (re.compile(rf"\bbetween\s+{_FLOAT}(?:{_SECONDS})?\s+and\s+{_FLOAT}{_SECONDS}", re.I), "range"),
    (re.compile(rf"\b{_FLOAT}\s*(?:-|–|to)\s*{_FLOAT}{_SECONDS}", re.I), "range"),
    (re.compile(rf"\b(?:in|for|during|over)\s+the\s+first\s+{_FLOAT}{_SECONDS}", re.I), "first"),
    (re.compile(rf"\b(?:in|for|during|over)\s+the\s+(?:last|final)\s+{_FLOAT}{_SECONDS}", re.I), "last"),
    (re.compile(rf"\bafter\s+{_FLOAT}{_SECONDS}", re.I), "after"),
    (re.compile(rf"\b(?:until|till|before)\s+{_FLOAT}{_SECONDS}", re.I), "until"),
    (re.compile(r"\bat\s+the\s+(?:beginning|start)\b|\b(?:at first|initially)\b", re.I), "begin"),
    (re.compile(r"\bat\s+the\s+end\b|\b(?:finally|eventually)\b", re.I), "end"),
]


def parse_time(clause: str) -> tuple[float, float | None] | None:
    """The span a clause's time expression names, or None when it has none."""
    for rx, how in _TIME_RULES:
        m = rx.search(clause)
        if not m:
            continue
        if how == "range":
            a, b = float(m.group(1)), float(m.group(2))
            return (min(a, b), max(a, b))
        if how == "first":
            return (0.0, float(m.group(1)))
        if how == "last":
            return (-float(m.group(1)), None)
        if how == "after":
            return (float(m.group(1)), None)
        if how == "until":
            return (0.0, float(m.group(1)))
        if how == "begin":
            return (0.0, EDGE_S)
        if how == "end":
            return (-EDGE_S, None)
    return None


def _clause_assertions(clause: str) -> list[tuple[str, str, bool, str]]:
    found: list[tuple[int, str, str, bool, str]] = []
    taken: list[tuple[int, int]] = []
    for rx, kind, rule_value in _RULES:
        for m in rx.finditer(clause):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue  # a phrase already read as something else ("pans left" is not placement)
            if kind == "placement" and _GAZE_BEFORE.search(clause[: m.start()]):
                continue
            value = rule_value
            if value is None:  # people_count from the number word
                word = m.group(1).lower()
                n = int(word) if word.isdigit() else _NUM[word]
                if n > 5:
                    continue
                value = str(n)
            before = " ".join(clause[: m.start()].split()[-3:])
            taken.append((m.start(), m.end()))
            found.append((m.start(), kind, value, bool(_NEGATION.search(before)), m.group(0)))
    seen, out = set(), []
    for _, kind, value, negated, text in sorted(found):
        if (kind, value, negated) not in seen:
            seen.add((kind, value, negated))
            out.append((kind, value, negated, text))
    return out


@dataclass(frozen=True)
class FractionalAssertion(Assertion):
    """An assertion whose span is a fraction of the clip (ordered clauses without times)."""

    frac: tuple[float, float] = field(default=(0.0, 1.0))

    def span(self, duration_s: float) -> tuple[float, float]:
        return self.frac[0] * duration_s, self.frac[1] * duration_s

    @property
    def id(self) -> str:
        return f"{'not_' if self.negated else ''}{self.kind}={self.value}@{self.frac[0]:.3g}-{self.frac[1]:.3g}T"

    def to_dict(self) -> dict:
        return super().to_dict() | {"start_s": None, "end_s": None}


def parse_instruction(text: str) -> list[Assertion]:
    """Rule-based assertions for free text (see the module docstring for the rules)."""
    out: list[Assertion] = []
    for sentence in re.split(r"(?<=[.;!?])\s+|\n+", text or ""):
        sentence = sentence.strip(" .;!?")
        if not sentence:
            continue
        clauses = [c.strip(" ,") for c in re.split(r",?\s*\b(?:and\s+)?then\b\s*,?", sentence, flags=re.I)]
        clauses = [c for c in clauses if c]
        parts = [[p for p in re.split(r"\s*,\s*", c) if p.strip()] for c in clauses]
        times = [[parse_time(p) for p in ps] for ps in parts]
        sequenced = len(clauses) > 1 and all(t is None for ts in times for t in ts)
        k = len(clauses)
        for i, (ps, ts) in enumerate(zip(parts, times)):
            span = None  # a time expression holds for its part and the parts after it, up to the next one
            for part, t in zip(ps, ts):
                span = t if t is not None else span
                for kind, value, negated, phrase in _clause_assertions(part):
                    if sequenced:
                        out.append(FractionalAssertion(kind, value, negated=negated, text=phrase, source="rules",
                                                       frac=(i / k, (i + 1) / k)))
                    else:
                        a, b = span if span is not None else (0.0, None)
                        out.append(Assertion(kind, value, start_s=a, end_s=b, negated=negated, text=phrase,
                                             source="rules"))
    return _dedupe(out)


def _dedupe(items: list[Assertion]) -> list[Assertion]:
    seen, out = set(), []
    for a in items:
        if a.id not in seen:
            seen.add(a.id)
            out.append(a)
    return out


def load_case(path) -> dict:
    """A benchmark case file (YAML or JSON): ``instruction`` text and/or an explicit ``assertions`` list,
    optional ``storyline`` (list of {start_s, end_s, text}) from the director. Returns
    {"instruction", "assertions": [Assertion], "source"}."""
    import json
    from pathlib import Path

    import yaml

    p = Path(path)
    raw = p.read_text()
    data = json.loads(raw) if p.suffix.lower() == ".json" else yaml.safe_load(raw)
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a case file must be a mapping with 'instruction' and/or 'assertions'")
    data = data.get("case", data)
    assertions: list[Assertion] = [assertion_from_dict(d) for d in data.get("assertions") or []]
    story = data.get("storyline")
    if isinstance(story, dict) and "shots" in story:  # the director's Storyline (kling.director)
        assertions += storyline_assertions(story)
        story = []
    for beat in story or []:
        for a in parse_instruction(str(beat.get("text", ""))):
            assertions.append(Assertion(a.kind, a.value, float(beat.get("start_s", 0.0)),
                                        None if beat.get("end_s") is None else float(beat["end_s"]),
                                        a.negated, a.text, a.character, "storyline"))
    return {"instruction": data.get("instruction"), "assertions": assertions,
            "source": "explicit" if data.get("assertions") else "text"}


# The director's shot fields -> vocabulary values (fields with no checkable value here give no assertion).
_SHOT_HEAD = {"nod": "nod", "shake": "shake", "still": "still"}
_SHOT_CAMERA = {"slow zoom in": "zoom_in", "slow zoom out": "zoom_out", "static close-up": "static",
                "static medium shot": "static", "static wide shot": "static"}
_SHOT_EMOTION = {"happy": "happy", "excited": "happy", "sad": "sad", "angry": "angry", "surprised": "surprised",
                 "neutral": "neutral", "calm": "neutral"}


def storyline_assertions(storyline: dict) -> list[Assertion]:
    """A director's storyline (kling.director.Storyline as a dict) as per-shot assertions over each shot's span:
    head motion, camera, mouth (speaking when the shot has a speaker, closed otherwise) and emotion."""
    out = []
    for i, shot in enumerate(storyline.get("shots") or []):
        a, b = float(shot["t_start"]), float(shot["t_end"])
        pairs = [("head_motion", _SHOT_HEAD.get(shot.get("head_motion"))),
                 ("camera", _SHOT_CAMERA.get(shot.get("camera"))),
                 ("mouth", "closed" if shot.get("speaker") == "none" else "speaking"),
                 ("emotion", _SHOT_EMOTION.get(shot.get("emotion")))]
        out += [Assertion(kind, value, a, b, False, f"shot {i}: {kind} {shot.get(kind, value)}", None, "storyline")
                for kind, value in pairs if value is not None]
    return out
