"""The offline director's reasoning: conflicts between the experts named, and settled by a stated modality
priority. Used as the `offline` answer of the reconciliation rounds (an LLM backend gets the same rule)."""

from __future__ import annotations

from kling.director.schema import AudioReading, Conflict, Reconciliation, TextReading, VisualReading

# Which modality wins, per aspect, first = highest. Stated in every storyline.
PRIORITY = {
    "timing": ["audio"],  # shots, pauses and speaker turns follow the audio
    "emotion": ["audio", "text", "visual"],  # the voice drives the face: its arousal wins, the text keeps valence
    "framing": ["visual", "text"],  # the reference fixes framing; actions the frame cannot show are dropped
    "motion": ["text", "audio"],  # an explicit request for head motion, gesture or camera wins where possible
    "identity": ["visual"],  # who is shown, hair, clothes, scene, lighting
    "speakers": ["audio", "visual"],  # how many people speak comes from the tracks
}
PRIORITY_RULE = ("Modality priority per aspect (first wins): " +
                 "; ".join(f"{k}: {' > '.join(v)}" for k, v in PRIORITY.items()))

HIGH, MID, LOW = "aroused", "moderate", "calm"
EMOTION_AROUSAL = {"excited": HIGH, "angry": HIGH, "surprised": HIGH, "happy": MID, "serious": MID,
                   "neutral": MID, "calm": LOW, "sad": LOW}
POSITIVE, NEGATIVE = {"happy", "excited", "surprised"}, {"sad", "angry"}
BODY_ACTIONS_NEED = {"walk": "wide", "run": "wide", "dance": "wide", "sit down": "medium", "turn around": "medium"}
_SIZE_RANK = {"close-up": 0, "medium": 1, "wide": 2, "unknown": -1}


def emotion_for(text_emotion: str | None, arousal: str) -> str:
    """The text's valence at the audio's arousal."""
    if text_emotion is None:
        return {HIGH: "excited", MID: "neutral", LOW: "calm"}[arousal]
    if text_emotion in POSITIVE:
        return {HIGH: "excited", MID: "happy", LOW: "happy"}[arousal] if text_emotion != "surprised" else (
            "surprised" if arousal == HIGH else "happy")
    if text_emotion == "sad":
        return "sad" if arousal != HIGH else "serious"
    if text_emotion == "angry":
        return "angry" if arousal == HIGH else "serious"
    if text_emotion == "calm":
        return "calm" if arousal != HIGH else "serious"
    return text_emotion  # serious, neutral: compatible with any arousal


def _far(a: str, b: str) -> bool:
    return {a, b} == {HIGH, LOW}


def reconcile(audio: AudioReading, visual: VisualReading, text: TextReading, round_no: int = 2) -> Reconciliation:
    conflicts: list[Conflict] = []
    arousal = audio.arousal_label
    speech = bool(audio.segments)
    emotion_text = text.emotion
    # the instruction against itself: audio decides where it can (emotion), else the first mention stands
    for c in text.contradictions:
        if "'" in c and any(e in c for e in EMOTION_AROUSAL):
            names = [w for w in c.split("'")[1::2] if w in EMOTION_AROUSAL]
            pick = min(names, key=lambda e: 0 if EMOTION_AROUSAL[e] == arousal else 1) if speech else names[0]
            conflicts.append(Conflict(aspect="emotion", statement=c, modalities=["text", "audio"], winner="audio",
                                      resolution=f"the voice is {arousal}: '{pick}' is kept"))
            emotion_text = pick
        else:
            conflicts.append(Conflict(aspect="motion", statement=c, modalities=["text"], winner="text",
                                      resolution="the first request in the instruction stands"))
    if emotion_text and speech and _far(EMOTION_AROUSAL[emotion_text], arousal):
        conflicts.append(Conflict(
            aspect="emotion", modalities=["text", "audio"], winner="audio",
            statement=(f"the instruction says '{emotion_text}' ({EMOTION_AROUSAL[emotion_text]}) while the prosody is "
                       f"{arousal} (arousal {audio.arousal:.2f}, {audio.energy_db:.0f} dBFS, "
                       f"{audio.speaking_rate_sps:.1f} syllables/s)"),
            resolution=f"the face follows the voice: '{emotion_for(emotion_text, arousal)}'"))
    emotion = emotion_for(emotion_text, arousal if speech else LOW)
    # body actions the reference's framing cannot show
    size = visual.shot_size
    if text.action:
        need = BODY_ACTIONS_NEED.get(text.action, "wide")
        if _SIZE_RANK[size] < _SIZE_RANK[need]:
            conflicts.append(Conflict(
                aspect="framing", modalities=["text", "visual"], winner="visual",
                statement=f"the instruction asks for '{text.action}' while the reference is a {size} shot",
                resolution=f"no '{text.action}': the frame stays a {size} shot; the intent goes into head motion "
                           "and expression"))
    camera = text.camera or {"close-up": "static close-up", "medium": "static medium shot",
                             "wide": "static wide shot"}.get(size, "static medium shot")
    want_rank = {"static close-up": 0, "static medium shot": 1, "static wide shot": 2, "slow zoom out": 2}
    if text.camera in want_rank and size != "unknown" and want_rank[text.camera] > _SIZE_RANK[size]:
        fixed = {"close-up": "static close-up", "medium": "static medium shot"}[size]
        conflicts.append(Conflict(
            aspect="framing", modalities=["text", "visual"], winner="visual",
            statement=f"the instruction asks for '{text.camera}' while the reference is a {size} shot "
                      "(nothing outside it is known)",
            resolution=f"camera '{fixed}'"))
        camera = fixed
    head = text.head_motion or ("lively" if arousal == HIGH else ("subtle" if speech else "still"))
    gesture = text.gesture or "none"
    if text.gesture and size == "close-up":
        conflicts.append(Conflict(
            aspect="framing", modalities=["text", "visual"], winner="visual",
            statement=f"the instruction asks for '{text.gesture}' while the reference is a close-up (no hands)",
            resolution="no gesture; shoulders may move"))
        gesture = "none"
    # people: faces against speaker tracks
    n_spk = len([s for s in audio.speakers if any(seg.speaker == s for seg in audio.segments)])
    faces = visual.n_faces if visual.n_images == 1 else sum(1 for k in range(visual.n_images)
                                                            if any(f.image == k for f in visual.faces))
    if faces == 0:
        conflicts.append(Conflict(aspect="identity", modalities=["visual"], winner="visual",
                                  statement="the reference shows no face",
                                  resolution="no identity to animate: the storyline is degraded"))
    elif n_spk > faces:
        conflicts.append(Conflict(
            aspect="speakers", modalities=["audio", "visual"], winner="audio",
            statement=f"{n_spk} voices in the audio but {faces} face(s) in the reference(s)",
            resolution="voices without a face are off-screen; the visible face listens during their turns"))
    elif visual.n_faces > 1 and len(audio.speakers) == 1:
        conflicts.append(Conflict(
            aspect="speakers", modalities=["visual", "audio"], winner="audio",
            statement=f"one voice but {visual.n_faces} faces in the reference",
            resolution="the largest face speaks; the others listen"))
    return Reconciliation(round=round_no, conflicts=conflicts, emotion=emotion, head_motion=head, camera=camera,
                          gesture=gesture, settled=True)
