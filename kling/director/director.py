"""The co-reasoning director: audio, visual and text experts state their readings, the director names the
conflicts between them and settles them by a stated modality priority (at most N rounds), then writes the
storyline (shots on the audio timeline) and the Negative Director writes each shot's negatives.

Every statement is a turn of the client's transcript, kept with the result. Audio and visual readings are
measured; the text reading, the reconciliation rounds, the shot content and the negatives are answered by
the configured backend (offline: the rules in kling.director.{text,reconcile,shots,negative}).
Bad input never half-writes: unreadable media or a failed backend raise DirectorError with the reason; input
that can still be directed (no speech, no face, several faces, an empty or self-contradictory instruction)
gives a storyline whose status is "degraded" with the reasons recorded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator

from kling.atomic import atomic_write_json
from kling.director.audio import AudioInputError, analyse_audio
from kling.director.negative import offline_negatives
from kling.director.plan import MAX_SHOT_S, MIN_SHOT_S, plan_shots, speaker_in
from kling.director.reconcile import PRIORITY, PRIORITY_RULE, reconcile
from kling.director.schema import Negatives, Reconciliation, Shot, Storyline, TextReading
from kling.director.shots import ShotContents, offline_shots, subject_phrase
from kling.director.text import read_instruction
from kling.director.visual import VisualInputError, analyse_images
from kling.llm import LLMClient, LLMError

VERSION = 1


class DirectorError(RuntimeError):
    def __init__(self, reason: str, transcript: list | None = None):
        super().__init__(reason)
        self.reason = reason
        self.transcript = transcript or []


@dataclass
class DirectorConfig:
    max_rounds: int = 3  # round 1: the experts' readings; then reconciliation rounds until settled
    min_shot_s: float = MIN_SHOT_S
    max_shot_s: float = MAX_SHOT_S
    speakers: list[str] | None = None  # names of the audio tracks' speakers (characters)


@dataclass
class DirectorResult:
    storyline: Storyline
    transcript: list[dict[str, Any]]
    readings: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.storyline.status, "version": VERSION, "storyline": self.storyline.model_dump(mode="json"),
                "readings": self.readings, "dialogue": self.transcript, "seconds": self.seconds}

    def write(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())


def _exactly(n: int, base, attr: str):
    """`base` with `attr` constrained to n items in shot order (a model that gets it wrong is re-asked)."""

    class Fixed(base):
        @model_validator(mode="after")
        def _n(self):
            items = getattr(self, attr)
            if len(items) != n:
                raise ValueError(f"{attr} must have exactly {n} items, one per shot, in order (got {len(items)})")
            if attr == "shots" and hasattr(items[0], "shot") and [s.shot for s in items] != list(range(n)):
                raise ValueError(f"shots must be numbered 0..{n - 1} in order")
            return self

    Fixed.__name__ = base.__name__
    return Fixed


def _msg(role_text: str, payload: dict) -> list[dict]:
    return [{"role": "system", "content": role_text},
            {"role": "user", "content": json.dumps(payload, ensure_ascii=False, default=str)}]


TEXT_ROLE = ("You are the text expert of an avatar video director. Read the user's instruction (any language; it "
             "may be empty) and state what it asks for: emotion, head motion, gesture, camera, body action; use "
             "null where nothing is asked, list contradictions inside the instruction.")
DIRECTOR_ROLE = ("You are the director. The audio, visual and text experts stated their readings. Name every "
                 "conflict between them explicitly and settle each by the modality priority. " + PRIORITY_RULE +
                 ". Return the reconciled intent; settled=true when no conflict is left open.")
SHOTS_ROLE = ("You write the content of each shot of an avatar video. The shots are fixed on the audio timeline "
              "(given with who speaks and the local voice statistics); for each, in order, give speaker, emotion, "
              "expression, head_motion, gesture, camera and a one-sentence generation prompt consistent with the "
              "reconciled intent and the reference image.")
NEGATIVE_ROLE = ("You are the Negative Director. For each shot, list what it must not show: the opposite emotion, "
                 "the wrong motion speed, implausible poses, avatar artifacts (frozen face, blurred teeth, colour "
                 "drift); plus global negatives for every shot.")


def direct(images: list[str | Path], audios: list[str | Path], instruction: str | None, client: LLMClient,
           config: DirectorConfig = DirectorConfig(), asr=None) -> DirectorResult:
    """The storyline of one case. Raises DirectorError (with the transcript so far) when it cannot be written."""
    secs: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        audio = analyse_audio(list(audios), config.speakers, asr=asr)
    except (AudioInputError, OSError, ValueError) as exc:
        raise DirectorError(f"audio: {exc}") from None
    secs["audio_expert"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        visual = analyse_images(list(images))
    except (VisualInputError, OSError) as exc:
        raise DirectorError(f"reference image: {exc}") from None
    secs["visual_expert"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    a, v = audio.reading, visual
    client.record("audio_expert.round1", a, speaker="audio", round=1)
    client.record("visual_expert.round1", v, speaker="visual", round=1)
    try:
        text = client.ask("text_expert.round1", _msg(TEXT_ROLE, {"instruction": instruction or ""}), TextReading,
                          offline=lambda: read_instruction(instruction), speaker="text", round=1).value
        rec, settled_at = None, None
        for r in range(2, max(2, config.max_rounds) + 1):
            payload = {"audio": a.model_dump(mode="json"), "visual": v.model_dump(mode="json"),
                       "text": text.model_dump(mode="json"), "round": r,
                       "previous": rec.model_dump(mode="json") if rec else None}
            rec = client.ask(f"director.round{r}", _msg(DIRECTOR_ROLE, payload), Reconciliation,
                             offline=lambda r=r: reconcile(a, v, text, r), speaker="director", round=r).value
            if rec.settled:
                settled_at = r
                break
        spans, plan_notes = plan_shots(a, config.min_shot_s, config.max_shot_s)
        shot_payload = {"shots": [{"t_start": s, "t_end": e, "cut": why, "speaker": speaker_in(a, s, e),
                                   **audio.window(s, e)} for s, e, why in spans],
                        "reconciled": rec.model_dump(mode="json"), "subject": subject_phrase(v),
                        "scene": v.scene, "lighting": v.lighting}
        contents = client.ask("storyline.shots", _msg(SHOTS_ROLE, shot_payload),
                              _exactly(len(spans), ShotContents, "shots"),
                              offline=lambda: offline_shots(spans, audio, v, text, rec), speaker="director",
                              round=(settled_at or config.max_rounds) + 1).value
        shots = [Shot(t_start=s, t_end=e, **c.model_dump()) for (s, e, _), c in zip(spans, contents.shots)]
        negatives = client.ask("negative_director", _msg(NEGATIVE_ROLE, {
            "shots": [s.model_dump(mode="json") for s in shots], "visual": v.model_dump(mode="json")}),
            _exactly(len(shots), Negatives, "shots"), offline=lambda: offline_negatives(shots, v),
            speaker="negative_director", round=(settled_at or config.max_rounds) + 2).value
    except LLMError as exc:
        name = exc.turn.name if exc.turn is not None else "llm"
        raise DirectorError(f"{name}: {exc.reason}", client.transcript.to_list()) from None
    secs["dialogue"] = time.perf_counter() - t0
    reasons = _reasons(a, v, text, rec, settled_at, config, plan_notes, client)
    degraded = not a.segments or v.n_faces == 0 or any(t.fallback_from for t in client.transcript.turns)
    try:
        storyline = Storyline(global_prompt=_global_prompt(v, text, a), duration_s=a.duration_s, shots=shots,
                              negatives=negatives, status="degraded" if degraded else "ok", reasons=reasons,
                              backend=client.label, modality_priority=PRIORITY)
    except ValidationError as exc:  # a planner bug, never a half-written storyline
        raise DirectorError(f"storyline invalid: {exc}", client.transcript.to_list()) from None
    return DirectorResult(storyline, client.transcript.to_list(),
                          {"audio": a.model_dump(mode="json"), "visual": v.model_dump(mode="json"),
                           "text": text.model_dump(mode="json"), "reconciled": rec.model_dump(mode="json")},
                          {k: round(x, 3) for k, x in secs.items()})


def _reasons(a, v, text, rec, settled_at, config, plan_notes, client) -> list[str]:
    out = []
    if not a.segments:
        out.append("no speech in the audio: one silent shot, the face listens")
    out += a.notes
    if v.n_faces == 0:
        out.append("the reference shows no face: there is no identity to animate")
    out += v.notes + text.notes + [f"instruction contradicts itself: {c}" for c in text.contradictions]
    if settled_at is None:
        out.append(f"the dialogue did not settle within {config.max_rounds} rounds; the last reconciliation is used")
    out += plan_notes
    for t in client.transcript.turns:
        if t.fallback_from:
            out.append(f"{t.name} answered by the fallback backend {t.backend} ({t.fallback_from})")
    return list(dict.fromkeys(out))


def _global_prompt(v, text: TextReading, a) -> str:
    who = subject_phrase(v)
    if v.n_faces == 0:
        who = "a scene with no visible face"
    people = f"{len(a.speakers)} speakers; " if len(a.speakers) > 1 else ""
    size = v.shot_size if v.shot_size != "unknown" else "framed as in the reference"
    parts = [f"{people}{who}", f"{size} shot", v.scene, v.lighting, "same identity and background as the reference"]
    if text.instruction:
        parts.append(f"instruction: {text.instruction}")
    return ", ".join(parts)
