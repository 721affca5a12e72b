"""The Negative Director: per shot, what that shot must not show (the opposite emotion, the wrong motion,
speech where there is none), plus negatives for every shot (avatar artifacts, implausible poses)."""

from __future__ import annotations

from kling.director.schema import Negatives, Shot, ShotNegatives, VisualReading

GLOBAL = ["frozen face", "blurred teeth", "colour drift", "flickering", "identity change", "warped background",
          "lip-sync drift", "duplicate face", "extra fingers", "deformed hands", "head turned beyond profile",
          "twisted neck", "unnatural eye rolling", "jpeg artifacts"]
OPPOSITE = {
    "happy": ["sad face", "angry frown", "tears"], "excited": ["bored face", "sleepy eyes", "flat expression"],
    "calm": ["shouting", "agitated face", "wide-eyed panic"], "sad": ["big smile", "laughing", "excited face"],
    "angry": ["smiling", "laughing", "relaxed face"], "surprised": ["bored face", "half-closed eyes"],
    "serious": ["laughing", "silly grin"], "neutral": ["exaggerated grimace", "laughing", "crying"],
}
MOTION = {
    "still": ["fast head movement", "nodding", "head shaking", "swaying"],
    "subtle": ["fast jerky head movement", "frozen stiff head", "large head swings"],
    "nod": ["head shaking side to side", "frozen head", "too fast nodding"],
    "shake": ["nodding up and down", "frozen head", "too fast head shaking"],
    "tilt": ["frozen head", "fast head movement"],
    "lively": ["frozen stiff pose", "static head", "slow motion"],
}
CAMERA = {
    "static close-up": ["camera shake", "zoom", "wide shot", "full body"],
    "static medium shot": ["camera shake", "zoom"], "static wide shot": ["camera shake", "extreme close-up"],
    "slow zoom in": ["zoom out", "fast zoom", "camera shake"], "slow zoom out": ["zoom in", "fast zoom"],
    "slow pan": ["fast whip pan", "camera shake"],
}


def offline_negatives(shots: list[Shot], visual: VisualReading) -> Negatives:
    glob = list(GLOBAL)
    if visual.shot_size == "close-up":
        glob += ["full body", "walking", "legs"]
    if visual.n_faces == 1:
        glob.append("a second person")
    per = []
    for i, s in enumerate(shots):
        neg = OPPOSITE[s.emotion] + MOTION[s.head_motion] + CAMERA[s.camera]
        neg += ["closed mouth while speaking", "mumbling mouth"] if s.speaker != "none" else \
            ["talking mouth", "lip movement"]
        if s.gesture == "none":
            neg.append("hand gestures in frame")
        per.append(ShotNegatives(shot=i, negatives=list(dict.fromkeys(neg))))
    return Negatives(global_negatives=glob, shots=per)
