"""What the director's experts say and what it writes: pydantic schemas, validated on every reply."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

Emotion = Literal["neutral", "happy", "excited", "calm", "sad", "angry", "surprised", "serious"]
HeadMotion = Literal["still", "subtle", "nod", "shake", "tilt", "lively"]
Camera = Literal["static close-up", "static medium shot", "static wide shot", "slow zoom in", "slow zoom out",
                 "slow pan"]
ShotSize = Literal["close-up", "medium", "wide", "unknown"]
Modality = Literal["audio", "visual", "text"]


class SpeechSegment(BaseModel):
    start_s: float
    end_s: float
    speaker: str


class AudioReading(BaseModel):
    """The audio expert's statement: measured, per track."""

    duration_s: float = Field(ge=0)
    segments: list[SpeechSegment]  # speaker turns in time order
    pauses: list[tuple[float, float]]  # silences of at least min_pause_s inside the speech
    speech_ratio: float = Field(ge=0, le=1)
    speaking_rate_sps: float = Field(ge=0)  # syllable-like energy peaks per second of speech
    energy_db: float  # mean level of the speech, dBFS
    pitch_hz: float | None  # median f0 of voiced speech
    pitch_range_semitones: float | None
    arousal: float = Field(ge=0, le=1)  # 0 calm .. 1 agitated, from level, pitch spread and rate
    arousal_label: Literal["calm", "moderate", "aroused"]
    speakers: list[str]
    transcript: str | None = None
    notes: list[str] = Field(default_factory=list)  # what could not be measured and why


class FaceReading(BaseModel):
    image: int  # which reference image
    cx: float  # centre, fraction of width
    cy: float
    height_frac: float  # face height / image height
    yaw_deg: float | None
    pitch_deg: float | None
    roll_deg: float | None


class VisualReading(BaseModel):
    """The visual expert's statement about the reference image(s)."""

    n_images: int
    faces: list[FaceReading]
    n_faces: int
    shot_size: ShotSize
    hair_colour: str | None
    clothing_colour: str | None
    scene: str  # background description from its colour and texture
    lighting: str  # bright / dim, even / side-lit, from luminance statistics
    notes: list[str] = Field(default_factory=list)


class TextReading(BaseModel):
    """The text expert's reading of the user's instruction."""

    instruction: str
    language: str  # ISO-like guess from the script and words ("en", "zh", "es", ... "unknown")
    emotion: Emotion | None
    head_motion: HeadMotion | None
    gesture: str | None
    camera: Camera | None
    action: str | None  # body action asked for ("walk", "dance", "sit"), which a portrait may not allow
    contradictions: list[str] = Field(default_factory=list)  # the instruction against itself
    notes: list[str] = Field(default_factory=list)


class Conflict(BaseModel):
    aspect: str  # "emotion", "action", "camera", "speakers", ...
    statement: str  # the conflict, named
    modalities: list[Modality]
    winner: Modality
    resolution: str


class Reconciliation(BaseModel):
    """A round of the dialogue: the conflicts found and how the modality priority settles them."""

    round: int
    conflicts: list[Conflict]
    emotion: Emotion
    head_motion: HeadMotion
    camera: Camera
    gesture: str
    settled: bool  # no conflict left open: the dialogue may stop


class ShotContent(BaseModel):
    """What a shot shows (the shot writer's reply); a Shot adds where it lies on the audio timeline."""

    speaker: str
    emotion: Emotion
    expression: str
    head_motion: HeadMotion
    gesture: str
    camera: Camera
    prompt: str


class Shot(ShotContent):
    t_start: float = Field(ge=0)
    t_end: float


class ShotNegatives(BaseModel):
    shot: int
    negatives: list[str]


class Negatives(BaseModel):
    """The Negative Director: what each shot must not show, and what no shot may show."""

    global_negatives: list[str]
    shots: list[ShotNegatives]


class Storyline(BaseModel):
    global_prompt: str
    duration_s: float = Field(gt=0)
    shots: list[Shot]
    negatives: Negatives | None = None
    status: Literal["ok", "degraded"] = "ok"
    reasons: list[str] = Field(default_factory=list)  # what went wrong or was assumed (bad input, fallbacks)
    backend: str = "offline"
    modality_priority: dict[str, list[Modality]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _covers_timeline(self) -> "Storyline":
        problems = timeline_problems([(s.t_start, s.t_end) for s in self.shots], self.duration_s)
        if problems:
            raise ValueError("shots do not cover the audio exactly: " + "; ".join(problems))
        if self.negatives is not None and [n.shot for n in self.negatives.shots] != list(range(len(self.shots))):
            raise ValueError("negatives must list every shot once, in order")
        return self


TOL = 1e-3


def timeline_problems(spans: list[tuple[float, float]], duration_s: float) -> list[str]:
    """Why shots fail to tile [0, duration]: ordered, no gap, no overlap, inside it. Empty when they do."""
    out = []
    if not spans:
        return ["no shots"]
    if abs(spans[0][0]) > TOL:
        out.append(f"first shot starts at {spans[0][0]:.3f}, not 0")
    for i, (a, b) in enumerate(spans):
        if b - a <= TOL:
            out.append(f"shot {i} is empty ({a:.3f}-{b:.3f})")
        if i and abs(a - spans[i - 1][1]) > TOL:
            kind = "gap" if a > spans[i - 1][1] else "overlap"
            out.append(f"{kind} between shots {i - 1} and {i} ({spans[i - 1][1]:.3f} / {a:.3f})")
    if abs(spans[-1][1] - duration_s) > TOL:
        out.append(f"last shot ends at {spans[-1][1]:.3f}, audio lasts {duration_s:.3f}")
    return out
