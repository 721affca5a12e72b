"""The text expert's reading of the instruction: emotion, head motion, gesture, camera and body action asked
for, in any of several languages (keyword lexicon; an LLM backend reads any language), plus the places where
the instruction contradicts itself. An empty instruction is a reading too: nothing asked."""

from __future__ import annotations

import re

from kling.director.schema import TextReading

# value -> words (lower case; CJK entries match as substrings)
EMOTIONS = {
    "excited": ["excited", "thrilled", "enthusiastic", "energetic", "emocionad", "entusiasm", "excité", "aufgeregt",
                "begeistert", "兴奋", "激动", "興奮"],
    "happy": ["happy", "cheerful", "joyful", "smiling", "smile", "glad", "feliz", "alegre", "sonrí", "heureux",
              "heureuse", "joyeu", "souri", "fröhlich", "glücklich", "lächel", "开心", "高兴", "快乐", "微笑", "嬉しい",
              "笑顔"],
    "sad": ["sad", "unhappy", "crying", "sorrow", "melanchol", "triste", "traurig", "悲伤", "难过", "伤心", "悲しい"],
    "angry": ["angry", "furious", "mad at", "enojad", "furios", "en colère", "wütend", "zornig", "生气", "愤怒", "怒"],
    "calm": ["calm", "relaxed", "gentle", "soft-spoken", "serene", "tranquil", "calmad", "calme", "ruhig", "平静",
             "冷静", "穏やか"],
    "surprised": ["surprised", "astonished", "amazed", "sorprendid", "surpris", "überrascht", "惊讶", "吃惊", "驚"],
    "serious": ["serious", "stern", "formal", "grave", "serio", "sérieu", "ernst", "严肃", "真剣"],
}
HEAD = {
    "nod": ["nod", "asiente", "asintiendo", "hoche la tête", "acquiesce", "nickt", "nicken", "点头", "うなず", "頷"],
    "shake": ["shakes his head", "shakes her head", "shake head", "shaking head", "shakes head", "shakes their head",
              "niega con la cabeza", "secoue la tête", "schüttelt den kopf", "摇头", "首を振"],
    "still": ["head still", "keeps still", "keeping his head still", "keeping her head still", "motionless",
              "without moving", "immóvil", "immobile", "regungslos", "不动", "静止"],
    "tilt": ["tilts", "tilting", "inclina la cabeza", "penche la tête", "neigt den kopf", "歪头"],
    "subtle": ["sway", "swaying", "gently moving", "balance", "wiegt", "轻轻摇摆"],
    "lively": ["animated", "lively", "expressive", "animad", "animé", "lebhaft", "生动"],
}
CAMERA = {
    "slow zoom in": ["zoom in", "zooms in", "zooming in", "push in", "acerca", "zoom avant", "heranzoom", "推近",
                     "拉近"],
    "slow zoom out": ["zoom out", "zooms out", "pull back", "aleja", "zoom arrière", "herauszoom", "拉远"],
    "slow pan": ["pan ", "pans", "panning", "paneo", "panoramique", "schwenk", "摇镜"],
    "static close-up": ["close-up", "close up", "closeup", "primer plano", "gros plan", "nahaufnahme", "特写"],
    "static wide shot": ["wide shot", "full body", "full-body", "plano general", "plan large", "totale", "全身",
                         "远景"],
    "static medium shot": ["medium shot", "waist up", "upper body", "plano medio", "plan moyen", "halbnah", "半身",
                           "中景"],
}
GESTURES = {
    "waves a hand": ["wave", "waving", "saluda", "salue", "winkt", "挥手", "手を振"],
    "points at the camera": ["point", "señala", "pointe", "zeigt", "指向"],
    "open-hand explaining gestures": ["gesture", "gesturing", "hand movements", "gestos", "gestes", "gesten", "手势"],
    "thumbs up": ["thumbs up", "pulgar arriba", "pouce levé", "daumen hoch", "竖起大拇指"],
}
ACTIONS = {
    "walk": ["walk", "walking", "camina", "marche", "geht", "läuft", "走路", "行走", "歩"],
    "run": ["run ", "runs", "running", "corre", "court", "rennt", "跑"],
    "dance": ["dance", "dancing", "baila", "danse", "tanzt", "跳舞", "踊"],
    "sit down": ["sits down", "sit down", "se sienta", "s'assoit", "setzt sich", "坐下"],
    "turn around": ["turns around", "turn around", "da la vuelta", "se retourne", "dreht sich um", "转身"],
}
OPPOSITE = {("happy", "sad"), ("excited", "calm"), ("excited", "sad"), ("happy", "angry"), ("calm", "angry"),
            ("sad", "excited")}
# a negation word at most two words before a mention, within one clause (no punctuation between)
_NEG = re.compile(r"\b(not|no|never|without|don't|doesn't|sin|sans|ohne|nicht|kein|不|没有)\b[ \t]+(\w+[ \t]+){0,2}$")


def language_of(text: str) -> str:
    if re.search(r"[\u3040-\u30ff]", text):
        return "ja"
    if re.search(r"[\u4e00-\u9fff]", text):
        return "zh"
    if re.search(r"[\u0400-\u04ff]", text):
        return "ru"
    words = set(re.findall(r"[a-zà-ÿ]+", text.lower()))
    scores = {"es": len(words & {"el", "la", "una", "un", "que", "con", "habla", "mientras", "y", "de"}),
              "fr": len(words & {"le", "la", "une", "un", "qui", "avec", "parle", "et", "de", "il", "elle"}),
              "de": len(words & {"der", "die", "das", "eine", "ein", "mit", "spricht", "und", "er", "sie"}),
              "en": len(words & {"the", "a", "an", "with", "talks", "and", "while", "he", "she", "to"})}
    best = max(scores, key=scores.get)
    return best if scores[best] else ("unknown" if not words else "en")


def _hits(text: str, lexicon: dict[str, list[str]]) -> list[str]:
    """Values whose words occur in the text, in order of first occurrence, skipping negated mentions."""
    found = []
    for value, words in lexicon.items():
        for w in words:
            for m in re.finditer(re.escape(w), text):
                if not _NEG.search(text[: m.start()]):
                    found.append((m.start(), value))
                    break
    seen, out = set(), []
    for _, v in sorted(found):
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def read_instruction(instruction: str | None) -> TextReading:
    text = (instruction or "").strip()
    low = f" {text.lower()} "
    if not text:
        return TextReading(instruction="", language="unknown", emotion=None, head_motion=None, gesture=None,
                           camera=None, action=None, notes=["empty instruction: nothing asked; audio and image lead"])
    emotions, heads = _hits(low, EMOTIONS), _hits(low, HEAD)
    cameras, gestures, actions = _hits(low, CAMERA), _hits(low, GESTURES), _hits(low, ACTIONS)
    contra = []
    for a in emotions:
        for b in emotions:
            if (a, b) in OPPOSITE:
                contra.append(f"the instruction asks for both '{a}' and '{b}'")
    if "still" in heads and ({"nod", "shake", "lively"} & set(heads)):
        moving = next(h for h in heads if h in ("nod", "shake", "lively"))
        contra.append(f"the instruction asks for a still head and for '{moving}'")
    if {"slow zoom in", "slow zoom out"} <= set(cameras):
        contra.append("the instruction asks to zoom in and to zoom out")
    notes = []
    if not (emotions or heads or cameras or gestures or actions):
        notes.append("no emotion, motion, gesture or camera request recognised in the instruction")
    # on a contradiction the first mention stands (stated as the rule in the reconciliation)
    head = next((h for h in heads if h != "subtle"), heads[0] if heads else None)
    return TextReading(instruction=text, language=language_of(text), emotion=emotions[0] if emotions else None,
                       head_motion=head, gesture=gestures[0] if gestures else None,
                       camera=cameras[0] if cameras else None, action=actions[0] if actions else None,
                       contradictions=contra, notes=notes)
