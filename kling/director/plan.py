"""Shots on the audio timeline: they tile [0, duration] exactly, cutting at speaker turns and pauses where
possible (the longest pause within reach), at a hard limit otherwise."""

from __future__ import annotations

from kling.director.schema import AudioReading

MIN_SHOT_S = 1.5
MAX_SHOT_S = 8.0


def cut_candidates(audio: AudioReading) -> list[tuple[float, float, str]]:
    """(time, weight, why): speaker changes weigh most, then pauses by length."""
    out = []
    for a, b in audio.pauses:
        if 0 < a and b < audio.duration_s:
            out.append(((a + b) / 2, b - a, "pause"))
    segs = audio.segments
    for prev, nxt in zip(segs, segs[1:]):
        if nxt.speaker != prev.speaker:
            t = (prev.end_s + nxt.start_s) / 2 if nxt.start_s >= prev.end_s else nxt.start_s
            out.append((t, 10.0 + max(0.0, nxt.start_s - prev.end_s), "speaker turn"))
    return sorted(out)


def plan_shots(audio: AudioReading, min_s: float = MIN_SHOT_S, max_s: float = MAX_SHOT_S) -> tuple[list, list]:
    """[(t_start, t_end, why_cut)], notes. why_cut says why the shot ends where it ends."""
    d = audio.duration_s
    cands = cut_candidates(audio)
    shots, notes, t = [], [], 0.0
    while d - t > max_s or (d - t > 2 * min_s and any(t + min_s <= c <= d - min_s for c, _, _ in cands)):
        reach = [(c, w, why) for c, w, why in cands if t + min_s <= c <= min(t + max_s, d - min_s)]
        if reach:
            c, _, why = max(reach, key=lambda x: (x[1], -x[0]))
        else:
            c, why = min(t + max_s, d - min_s), "length limit (no pause within reach)"
            notes.append(f"cut at {c:.2f} s is not at a pause: no pause between {t + min_s:.2f} and "
                         f"{min(t + max_s, d - min_s):.2f} s")
        shots.append((round(t, 3), round(c, 3), why))
        t = round(c, 3)
        if len(shots) > 10000:
            break
    shots.append((round(t, 3), round(d, 3), "end of audio"))
    return shots, notes


def speaker_in(audio: AudioReading, t0: float, t1: float) -> str:
    """Who speaks most inside [t0, t1); "none" when nobody does."""
    talk: dict[str, float] = {}
    for s in audio.segments:
        o = min(t1, s.end_s) - max(t0, s.start_s)
        if o > 0:
            talk[s.speaker] = talk.get(s.speaker, 0.0) + o
    return max(talk, key=talk.get) if talk else "none"
