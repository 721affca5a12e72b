"""Shot content for the offline backend: each shot's emotion, expression, head motion, gesture, camera and
prompt, read from the audio inside the shot and the reconciled intent."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kling.director.audio import AudioAnalysis, arousal_label, arousal_of
from kling.director.reconcile import emotion_for
from kling.director.schema import Reconciliation, ShotContent, TextReading, VisualReading

EXPRESSION = {
    "happy": "a warm smile, relaxed eyes", "excited": "wide bright eyes, big smile, raised brows",
    "calm": "soft relaxed face, gentle eyes", "sad": "lowered gaze, drooping mouth corners",
    "angry": "furrowed brows, tight lips", "surprised": "raised brows, widened eyes",
    "serious": "focused eyes, steady mouth", "neutral": "attentive, natural face",
}
HEAD_PHRASE = {"still": "head held still", "subtle": "subtle natural head movement", "nod": "nodding",
               "shake": "shaking the head", "tilt": "slight head tilt", "lively": "lively, animated head movement"}


class ShotContents(BaseModel):
    shots: list[ShotContent] = Field(min_length=1)


def subject_phrase(visual: VisualReading) -> str:
    bits = []
    if visual.hair_colour:
        bits.append(f"{visual.hair_colour} hair")
    if visual.clothing_colour:
        bits.append(f"a {visual.clothing_colour} top")
    return "the person" + (f" with {' and '.join(bits)}" if bits else "")


def offline_shots(spans, audio: AudioAnalysis, visual: VisualReading, text: TextReading,
                  rec: Reconciliation) -> ShotContents:
    from kling.director.plan import speaker_in

    out = []
    for (t0, t1, _why) in spans:
        w = audio.window(t0, t1)
        speaker = speaker_in(audio.reading, t0, t1)
        talking = speaker != "none"
        local = arousal_label(arousal_of(w["energy_db"], w["pitch_range"], audio.reading.speaking_rate_sps)) \
            if talking else "calm"
        # the reconciled emotion sets valence; this shot's own voice sets its intensity
        emotion = emotion_for(text.emotion if text.emotion else None, local) if talking else (
            "calm" if rec.emotion in ("excited", "angry") else rec.emotion)
        if rec.emotion in ("sad", "serious", "angry") and emotion in ("excited", "happy"):
            emotion = rec.emotion
        head = rec.head_motion if talking else ("still" if rec.head_motion in ("still", "nod", "shake") else "subtle")
        if talking and rec.head_motion == "subtle" and local == "aroused":
            head = "lively"
        gesture = rec.gesture if talking else "none"
        expression = EXPRESSION[emotion] + (", speaking" if talking else ", listening with mouth closed")
        parts = [subject_phrase(visual), expression, HEAD_PHRASE[head]]
        if gesture != "none":
            parts.append(gesture)
        parts += [rec.camera, visual.scene, visual.lighting]
        out.append(ShotContent(speaker=speaker, emotion=emotion, expression=expression, head_motion=head,
                               gesture=gesture, camera=rec.camera, prompt=", ".join(parts)))
    return ShotContents(shots=out)
