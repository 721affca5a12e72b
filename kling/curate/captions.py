"""Structured captions per clip, from the curation tables and the frames; each field with its source
(``measured``, ``vlm``, ``llm``) and a confidence.

The offline backend measures: head motion from the head-pose series of the clip's face track (nod = pitch
oscillation, shake = yaw oscillation, still = neither; amplitude in degrees), camera zoom from the trend of the
face box height, camera motion from the box speed, shot size from the face's share of the frame, gaze from the
median pose, speech (ratio, pauses, rate, level) from the VAD table and the audio, people from the face tracks
seen in the clip, who speaks from the speaker binding, defects from the quality and lip-sync decisions,
appearance, scene and lighting from the clip's middle frame. What it cannot measure (apparent age, emotion
beyond the voice's arousal, gestures outside the frame) is said with confidence 0 or low, not invented.
The openai backend adds a vision model: N sampled frames plus the measured fields go to it, its reply is
validated and merged field by field (appearance, emotion, gaze, gestures, scene, lighting, the paragraph),
each keeping its source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from kling.atomic import write_parquet_atomic
from kling.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from kling.curate.runner import Workspace
from kling.llm import LLMClient, LLMError
from kling.llm.images import user_message
from kling.perception.appearance import region_colour, scene_and_lighting
from kling.perception.prosody import arousal_label, arousal_of, speaking_rate

VERSION = 1
FIELDS = ["age_group", "hair_colour", "clothing_colours", "emotion", "head_motion", "head_motion_amplitude_deg",
          "gaze", "gestures", "shot_size", "camera_motion", "zoom", "scene", "lighting", "speech_language",
          "speech_rate_sps", "speech_energy_db", "speech_pauses", "speech_ratio", "n_people", "who_speaks",
          "defects", "caption"]
# Offline head-motion reading (head_motion_of). Head turns are read from 2-D landmark geometry, which the demo
# corpus showed to be steadier than solvePnP angles (cal_still: PnP yaw std 5 degrees; nose offset 0.006 IOD):
# yaw ~ horizontal nose-tip offset from the eye midpoint, pitch ~ its vertical offset, both in interocular
# distances (IOD). Nod / shake = a periodic (0.5-2.5 Hz) pitch / yaw component; still = yaw spread below
# STILL_IOD; anything else is subtle motion (sway). NOSE_DEPTH_IOD converts an offset amplitude to degrees.
# STILL_IOD sits between the demo's still clips and its gentlest sway, measured over two encodings of the
# corpus (the landmarks' jitter follows the codec's noise): still yaw 0.0059-0.0105 (cal_still), 0.0074-0.0076
# (bo_zoom); sway 0.0130-0.0145 (bo_silent, whose pitch 0.019-0.026 is near its own threshold), 0.0166-0.0179
# (bo_talk); cal_offset's yaw 0.0112-0.0135 comes with pitch 0.027-0.033.
PERIODIC_MIN, SWING_MIN_IOD, STILL_IOD, NOSE_DEPTH_IOD = 0.5, 0.03, 0.012, 0.5
# Up-down (pitch) is noisier than side-to-side (eye landmarks move with blinks): still clips of the demo
# measure 0.013-0.020 pitch against 0.006-0.011 yaw, so it gets its own, wider still threshold.
STILL_PITCH_IOD = 0.025
ZOOM_RATIO, ZOOM_R2 = 1.2, 0.6  # face box height end/start along its linear fit, and the fit's R^2
GAZE_DEG = 15.0  # |yaw| and |pitch| below this: looking at the camera


class CaptionError(RuntimeError):
    pass


def _field(value, source: str, conf: float) -> dict:
    return {"value": value, "source": source, "confidence": round(float(conf), 3)}


def _highpass(x: np.ndarray, fps: float = FPS, window_s: float = 1.5) -> np.ndarray:
    """Pose minus its moving average: removes slow drift and sway, keeps nods and shakes (~0.5-3 Hz)."""
    ok = np.isfinite(x)
    if ok.sum() < 5:
        return np.full_like(x, np.nan)
    x = np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])
    k = max(3, int(window_s * fps) | 1)
    pad = np.pad(x, k // 2, mode="edge")
    return x - np.convolve(pad, np.ones(k) / k, mode="valid")


def head_turn_proxies(lm68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) proxies per frame from (n, 68, 2) landmarks: the nose tip's offset from the eye midpoint in
    interocular distances (NaN where landmarks are missing)."""
    lm = np.asarray(lm68, float).reshape(-1, 68, 2)
    left, right = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    mid, iod = (left + right) / 2, np.linalg.norm(right - left, axis=1)
    iod[iod <= 0] = np.nan
    nose = lm[:, 30]
    return (nose[:, 0] - mid[:, 0]) / iod, (nose[:, 1] - mid[:, 1]) / iod


def periodicity(x: np.ndarray, lo: int = 10, hi: int = 50) -> float:
    """Highest normalised autocorrelation at lags lo..hi frames (0.5-2.5 Hz at 25 fps): 1 = a clean oscillation."""
    x = x[np.isfinite(x)]
    if len(x) < hi + 5 or x.std() == 0:
        return 0.0
    x = x - x.mean()
    ac = np.correlate(x, x, "full")[len(x) - 1:]
    return float(np.max(ac[lo:hi] / ac[0]))


def _smooth(x: np.ndarray, k: int = 5) -> np.ndarray:
    ok = np.isfinite(x)
    if ok.sum() < k:
        return x
    x = np.interp(np.arange(len(x)), np.flatnonzero(ok), x[ok])
    return np.convolve(np.pad(x, k // 2, mode="edge"), np.ones(k) / k, mode="valid")


def _degrees(offset_amplitude: float) -> float:
    return round(float(np.degrees(np.arcsin(min(1.0, offset_amplitude / NOSE_DEPTH_IOD)))), 1)


def head_motion_of(yaw: np.ndarray, pitch: np.ndarray) -> tuple[str, float, float]:
    """(nod | shake | still | subtle | unknown, amplitude in degrees, confidence) from per-frame yaw and pitch
    proxies (head_turn_proxies)."""
    if np.isfinite(yaw).sum() < 10:
        return "unknown", float("nan"), 0.0
    ys, ps = _smooth(yaw), _smooth(pitch)
    hy, hp = _highpass(ys), _highpass(ps)
    sy, sp = float(np.nanstd(hy)), float(np.nanstd(hp))
    per_y, per_p = periodicity(hy), periodicity(hp)
    if per_p >= PERIODIC_MIN and sp >= SWING_MIN_IOD and sp > sy:
        return "nod", _degrees(np.sqrt(2) * sp), per_p
    if per_y >= PERIODIC_MIN and sy >= SWING_MIN_IOD and sy > sp:
        return "shake", _degrees(np.sqrt(2) * sy), per_y
    spread_y, spread_p = float(np.nanstd(ys)), float(np.nanstd(ps))
    spread = max(spread_y, spread_p)
    if spread_y < STILL_IOD and spread_p < STILL_PITCH_IOD:  # still only if neither way moves
        return "still", _degrees(np.sqrt(2) * spread_y), 1.0 - 0.5 * spread_y / STILL_IOD
    return "subtle", _degrees(np.sqrt(2) * spread), 0.6


def zoom_of(heights: np.ndarray) -> tuple[str, float]:
    """Camera zoom from the face box height's linear trend over the clip (ratio end / start)."""
    ok = np.isfinite(heights) & (heights > 0)
    if ok.sum() < 5:
        return "unknown", 0.0
    t = np.flatnonzero(ok)
    h = heights[ok]
    a, b = np.polyfit(t, h, 1)
    fit = b + a * t
    r2 = 1 - float(np.sum((h - fit) ** 2)) / max(float(np.sum((h - h.mean()) ** 2)), 1e-9)
    ratio = fit[-1] / fit[0] if fit[0] > 0 else 1.0
    # a zoom is a steady change of scale: a large ratio along a line (head bobbing is not)
    if ratio > ZOOM_RATIO and r2 >= ZOOM_R2:
        return "in", min(1.0, (ratio - 1) / 0.5)
    if ratio < 1 / ZOOM_RATIO and r2 >= ZOOM_R2:
        return "out", min(1.0, (1 / ratio - 1) / 0.5)
    return "none", 0.8


def _gaze(yaw: float, pitch: float) -> str:
    if not np.isfinite(yaw) or not np.isfinite(pitch):
        return "unknown"
    if abs(yaw) < GAZE_DEG and abs(pitch) < GAZE_DEG:
        return "camera"
    if abs(yaw) >= abs(pitch):
        return "left" if yaw > 0 else "right"
    return "up" if pitch > 0 else "down"


def _shot_size(face_ratio: float) -> str:
    if not np.isfinite(face_ratio):
        return "unknown"
    return "close-up" if face_ratio > 0.35 else ("medium" if face_ratio > 0.15 else "wide")


def _pauses(speech: np.ndarray, min_frames: int = 4) -> int:
    """Silences of at least min_frames between two stretches of speech."""
    idx = np.flatnonzero(speech)
    if len(idx) < 2:
        return 0
    gaps = np.diff(idx) - 1
    return int((gaps >= min_frames).sum())


class ClipInputs:
    """What one video's curation left behind, read once."""

    def __init__(self, ws: Workspace, video_id: str):
        self.ws, self.vid = ws, video_id
        q = ws.output("quality", video_id, ".parquet")
        if not q.exists():
            raise CaptionError(f"{video_id}: no quality table (curation step quality has not run or rejected it)")
        self.quality = pd.read_parquet(q)
        cols = ["frame", "track_id", "x0", "y0", "x1", "y1", "lm68"]
        self.tracks = pq.read_table(ws.output("face_tracks", video_id, ".parquet"), columns=cols).to_pandas()
        self.speech = pd.read_parquet(ws.output("speech", video_id, ".parquet"))["speech"].to_numpy(bool)
        sp = ws.output("speech", video_id, ".speakers.parquet")
        self.speakers = pd.read_parquet(sp) if sp.exists() else pd.DataFrame()
        ls = ws.output("lip_sync", video_id, ".parquet")
        self.lip_sync = pd.read_parquet(ls) if ls.exists() else None
        self.video = ws.output("normalise", video_id, ".mp4")
        size = (ws.load("normalise", video_id).counts or {}).get("size", "0x0")
        self.width, self.height = (int(v) for v in size.split("x"))
        self._audio = None

    def audio(self) -> np.ndarray | None:
        if self._audio is None:
            from kling.io.audio import read_audio

            self._audio = read_audio(self.video) if self.video.exists() else None
        return self._audio

    def frames(self, indices: list[int]) -> dict[int, np.ndarray]:
        from kling.io.decode import iter_frames

        want, out = set(indices), {}
        for chunk in iter_frames(self.video, fps=FPS, chunk_size=32):
            for k in range(len(chunk)):
                i = chunk.start + k
                if i in want:
                    out[i] = chunk.frames[k]
            if len(out) == len(want) or chunk.start + len(chunk) > max(want):
                break
        return out


def measure_clip(inp: ClipInputs, row: pd.Series, frame: np.ndarray | None) -> dict[str, dict]:
    from kling.perception.faces.pose import head_pose_from_tracks
    from kling.perception.speech import rms_envelope

    a, b, tid = int(row["start_frame"]), int(row["end_frame"]), int(row["track_id"])
    t = inp.tracks
    rows = t[(t["track_id"] == tid) & (t["frame"] >= a) & (t["frame"] < b)].sort_values("frame")
    pose = head_pose_from_tracks(rows, inp.width, inp.height) if len(rows) else np.full((0, 3), np.nan)
    yaw, pitch = pose[:, 0], pose[:, 1]  # degrees (solvePnP): gaze
    f: dict[str, dict] = {}
    lm = np.stack(rows["lm68"].to_numpy()) if len(rows) else np.zeros((0, 136))
    motion, amp, conf = head_motion_of(*head_turn_proxies(lm))
    f["head_motion"] = _field(motion, "measured", conf)
    f["head_motion_amplitude_deg"] = _field(None if not np.isfinite(amp) else float(amp), "measured", conf)
    f["gaze"] = _field(_gaze(float(np.nanmedian(yaw)) if len(yaw) else np.nan,
                             float(np.nanmedian(pitch)) if len(pitch) else np.nan), "measured", 0.6)
    heights = (rows["y1"] - rows["y0"]).to_numpy(float)
    zoom, zconf = zoom_of(heights)
    f["zoom"] = _field(zoom, "measured", zconf)
    speed = float(row.get("box_speed", np.nan))
    moving = zoom in ("in", "out") or (np.isfinite(speed) and speed > 0.02)
    f["camera_motion"] = _field("moving" if moving else "static", "measured", 0.7)
    size = _shot_size(float(row.get("face_ratio", np.nan)))
    f["shot_size"] = _field(size, "measured", 0.8)
    # people: face tracks seen in the clip's frames
    seen = t[(t["frame"] >= a) & (t["frame"] < b)]["track_id"].nunique()
    f["n_people"] = _field(int(seen), "measured", 0.8)
    # speech
    sp = np.zeros(b - a, bool)  # a speech table shorter than the clip leaves its tail silent, not all of it
    n = max(0, min(b, len(inp.speech)) - a)
    sp[:n] = inp.speech[a:a + n]
    ratio = float(sp.mean()) if len(sp) else 0.0
    f["speech_ratio"] = _field(round(ratio, 3), "measured", 0.9)
    f["speech_pauses"] = _field(_pauses(sp), "measured", 0.8)
    audio = inp.audio()
    rate = level = None
    arousal = 0.0
    if audio is not None and ratio > 0:
        seg = audio[a * SAMPLES_PER_FRAME: b * SAMPLES_PER_FRAME]
        env = rms_envelope(seg, SAMPLE_RATE, FPS, b - a)
        rate = speaking_rate(env, sp[: len(env)])
        db = 20 * np.log10(np.maximum(env[sp[: len(env)]], 1e-5))
        level = float(db.mean()) if len(db) else None
        arousal = arousal_of(level if level is not None else -60.0, None, rate)
    f["speech_rate_sps"] = _field(None if rate is None else round(rate, 2), "measured", 0.6 if rate else 0.0)
    f["speech_energy_db"] = _field(None if level is None else round(level, 1), "measured", 0.9 if level else 0.0)
    f["speech_language"] = _field(None, "measured", 0.0)  # needs ASR or a language-ID model
    # who speaks: speech segments bound to this clip's track
    who = "none"
    if ratio > 0:
        who = "unknown"
        s = inp.speakers
        if len(s):
            inside = s[(s["end_s"] > a / FPS) & (s["start_s"] < b / FPS)]
            bound = inside[inside["status"].isin(["bound", "coverage_only"])]["track_id"]
            if len(bound):
                who = "the subject" if (bound == tid).mean() >= 0.5 else "someone off-screen"
    f["who_speaks"] = _field(who, "measured", 0.7 if who not in ("unknown",) else 0.0)
    # defects recorded by quality filters and the lip-sync decision
    listed = row.get("reject_reasons") if "reject_reasons" in row else None
    defects = [str(x) for x in listed] if listed is not None and not isinstance(listed, str) else []
    if inp.lip_sync is not None and "clip_id" in inp.lip_sync:
        d = inp.lip_sync[inp.lip_sync["clip_id"] == row["clip_id"]]
        if len(d) and not bool(d["keep"].iloc[0]) and isinstance(d["reason"].iloc[0], str):
            defects.append(d["reason"].iloc[0])
    f["defects"] = _field(sorted(set(map(str, defects))), "measured", 0.8)
    # voice arousal is the only emotion cue measured offline
    f["emotion"] = _field({"calm": "calm", "moderate": "neutral", "aroused": "animated"}[arousal_label(arousal)]
                          if ratio > 0 else "neutral", "measured", 0.3)
    f["gestures"] = _field("none visible (hands out of frame)" if size == "close-up" else None, "measured",
                           0.5 if size == "close-up" else 0.0)
    f["age_group"] = _field(None, "measured", 0.0)  # no age model offline
    hair = cloth = None
    scene = lighting = None
    if frame is not None and len(rows):
        mid = rows.iloc[len(rows) // 2]
        x0, y0, x1, y1 = (float(mid[k]) for k in ("x0", "y0", "x1", "y1"))
        bw, bh = x1 - x0, y1 - y0
        hair = region_colour(frame, x0 + 0.2 * bw, y0 - 0.35 * bh, x1 - 0.2 * bw, y0 - 0.05 * bh)
        cloth = region_colour(frame, x0 - 0.1 * bw, y1 + 0.45 * bh, x1 + 0.1 * bw, y1 + 0.9 * bh)
        scene, lighting = scene_and_lighting(frame, [(x0 - 0.3 * bw, y0 - 0.5 * bh, x1 + 0.3 * bw, y1 + 0.2 * bh)])
    f["hair_colour"] = _field(hair, "measured", 0.5 if hair else 0.0)
    f["clothing_colours"] = _field([cloth] if cloth else [], "measured", 0.5 if cloth else 0.0)
    f["scene"] = _field(scene, "measured", 0.5 if scene else 0.0)
    f["lighting"] = _field(lighting, "measured", 0.5 if lighting else 0.0)
    f["caption"] = _field(paragraph(f), "measured", 0.5)
    return f


_MOTION_WORDS = {"nod": "nods", "shake": "shakes the head", "still": "keeps the head still",
                 "subtle": "moves the head a little", "unknown": "is seen"}


def paragraph(f: dict[str, dict]) -> str:
    v = {k: x["value"] for k, x in f.items()}
    who = "A person" + (f" with {v['hair_colour']} hair" if v.get("hair_colour") else "")
    if v.get("clothing_colours"):
        who += f" in {' and '.join(v['clothing_colours'])}"
    amp = v.get("head_motion_amplitude_deg")
    motion = _MOTION_WORDS.get(v["head_motion"], "moves")
    if v["head_motion"] in ("nod", "shake") and amp:
        motion += f" (about {amp:.0f} degrees)"
    talk = ("speaks" if v["who_speaks"] in ("the subject", "unknown") else "is silent") \
        if v["speech_ratio"] > 0 else "is silent"
    s = [f"{who} {talk} and {motion}, looking {'at the camera' if v['gaze'] == 'camera' else v['gaze']}."]
    cam = "The camera zooms in" if v["zoom"] == "in" else ("The camera zooms out" if v["zoom"] == "out" else
                                                           f"The camera is {v['camera_motion']}")
    s.append(f"{cam}, {v['shot_size']} shot" + (f", {v['scene']}, {v['lighting']}." if v.get("scene") else "."))
    if v["speech_ratio"] > 0:
        bits = [f"speech fills {100 * v['speech_ratio']:.0f}% of the clip", f"{v['speech_pauses']} pause{'' if v['speech_pauses'] == 1 else 's'}"]
        if v.get("speech_rate_sps"):
            bits.append(f"{v['speech_rate_sps']:.1f} syllables per second")
        s.append("The voice is " + v["emotion"] + "; " + ", ".join(bits) + ".")
    if v["n_people"] > 1:
        s.append(f"{v['n_people']} people are visible.")
    if v["defects"]:
        s.append("Defects: " + ", ".join(v["defects"]) + ".")
    return " ".join(s)


class VLMCaption(BaseModel):
    """What the vision model adds; null where it cannot tell."""

    age_group: str | None = Field(None, description="child, young adult, adult, middle-aged, senior")
    hair_colour: str | None = None
    clothing_colours: list[str] = Field(default_factory=list)
    emotion: str | None = None
    gaze: str | None = None
    gestures: str | None = None
    scene: str | None = None
    lighting: str | None = None
    caption: str = Field(min_length=10)


VLM_PROMPT = ("You caption a talking-head training clip. Frames are sampled in order. Measured fields (trust them; "
              "they come from face tracking, head pose and voice activity): {measured}. Describe what the frames "
              "show: apparent age group, hair colour, clothing colours, emotion, gaze, gestures, scene, lighting, "
              "and a one-paragraph caption consistent with the measured motion and speech.")
VLM_FIELDS = ["age_group", "hair_colour", "clothing_colours", "emotion", "gaze", "gestures", "scene", "lighting",
              "caption"]


def merge_vlm(fields: dict[str, dict], reply: VLMCaption, conf: float = 0.7) -> dict[str, dict]:
    """Fields the vision model answered replace the measured ones (source vlm); the rest stay measured."""
    out = dict(fields)
    for k in VLM_FIELDS:
        val = getattr(reply, k)
        if val not in (None, [], ""):
            out[k] = _field(val, "vlm", conf)
    return out


def caption_video(ws: Workspace, video_id: str, client: LLMClient | None = None, n_frames: int = 4) -> pd.DataFrame:
    """One row per candidate clip of the video; columns <field>, <field>__source, <field>__conf (lists and
    None as JSON text), plus ids. The openai backend adds the vision model's fields."""
    inp = ClipInputs(ws, video_id)
    rows = []
    use_vlm = client is not None and client.config.backend != "offline"
    wanted = {}
    for i, r in inp.quality.iterrows():
        a, b = int(r["start_frame"]), int(r["end_frame"])
        picks = [a + int((k + 0.5) * (b - a) / n_frames) for k in range(n_frames)] if use_vlm else []
        wanted[i] = (picks, (a + b) // 2)
    # one decode of the video for every clip's frames
    frames = inp.frames(sorted({f for picks, mid in wanted.values() for f in picks + [mid]}))
    for i, r in inp.quality.iterrows():
        a, b = int(r["start_frame"]), int(r["end_frame"])
        picks, mid = wanted[i]
        fields = measure_clip(inp, r, frames.get(mid))
        status, reason = "measured", None
        if use_vlm:
            measured = {k: x["value"] for k, x in fields.items() if k != "caption"}
            msg = user_message(VLM_PROMPT.format(measured=json.dumps(measured, default=str)),
                               [frames[i] for i in picks if i in frames])
            try:
                reply = client.ask("caption", [msg], VLMCaption, speaker="vlm",
                                   offline=lambda: VLMCaption(caption=fields["caption"]["value"]))
                if reply.turn.backend == "offline":  # a configured fallback answered: labelled, nothing merged
                    status, reason = "measured (fallback)", reply.turn.fallback_from
                else:
                    fields, status = merge_vlm(fields, reply.value), "vlm"
            except LLMError as exc:
                raise CaptionError(f"{video_id} clip {r['clip_id']}: vision model failed: {exc.reason}") from None
        row: dict[str, Any] = {"clip_id": r["clip_id"], "video_id": video_id, "track_id": int(r["track_id"]),
                               "start_frame": a, "end_frame": b, "caption_status": status, "caption_reason": reason}
        for k in FIELDS:
            val = fields[k]["value"]
            row[k] = json.dumps(val) if isinstance(val, list) else (None if val is None else str(val)
                                                                     if not isinstance(val, (int, float)) else val)
            row[f"{k}__source"] = fields[k]["source"]
            row[f"{k}__conf"] = fields[k]["confidence"]
        rows.append(row)
    return _typed(pd.DataFrame(rows))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for k in ("head_motion_amplitude_deg", "speech_rate_sps", "speech_energy_db", "speech_ratio"):
        if k in df:
            df[k] = pd.to_numeric(df[k], errors="coerce").astype(float)
    for k in ("speech_pauses", "n_people"):
        if k in df:
            df[k] = pd.to_numeric(df[k], errors="coerce").astype("Int64")
    for k in FIELDS:
        if k in df and df[k].dtype == object:
            df[k] = df[k].astype("string")
    return df


def write_captions(ws: Workspace, video_id: str, client: LLMClient | None = None, n_frames: int = 4) -> Path:
    """caption_video, written atomically to <ws>/captions/<video_id>.parquet with its provenance."""
    df = caption_video(ws, video_id, client, n_frames)
    meta = {"version": VERSION, "backend": client.label if client else "offline", "n_frames": n_frames,
            "llm": client.config.public() if client else None}
    return write_parquet_atomic(df, ws.output("captions", video_id, ".parquet"), meta)


def read_captions(ws: Workspace) -> dict[str, str]:
    """clip id -> caption paragraph of every clip the captions step wrote in `ws` (the text that the avatar
    model's training shards carry: kling.train.avatar_shards.write_shards(captions=...))."""
    out: dict[str, str] = {}
    for path in sorted((ws.root / "captions").glob("*.parquet")):
        table = pq.read_table(path, columns=["clip_id", "caption"]).to_pydict()
        out.update({c: t for c, t in zip(table["clip_id"], table["caption"]) if t})
    return out
