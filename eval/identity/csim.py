"""Identity similarity (CSIM) over whole long videos: the protocol, fixed here because papers leave it open.

Protocol ``csim-v1`` (every number below is recorded in ``PROTOCOL`` and in every result and row):

1. **Timeline.** The video is read on a 25 fps constant-rate timeline (kling.io.decode.iter_frames); frame
   ``i`` is at ``i / 25`` s. Frames ``0, stride, 2*stride, ...`` are *sampled* (default stride 5: 5 per second).
2. **Faces.** Face tracks come from kling.perception.faces.tracks (detection, tracking, 5-point landmarks), cut at
   scene cuts (kling.perception.shots). Only detected faces are embedded; gap-filled (``interpolated``) track rows
   are treated as "no face". A track is one person: an identity switch inside one shot's track is not split.
3. **Embedding.** Reference: the largest detected face of each reference image. Video: each sampled frame's
   faces. ArcFace: 112x112 crop warped onto insightface's 5-point template (``norm_crop``), (x-127.5)/127.5 RGB,
   L2-normalised output; dlib: its 150x150 68-point face chip. Similarity = cosine.
4. **Who is who.** A track's affinity to a reference is its mean cosine over its sampled faces. References are
   matched to tracks by optimal assignment (Hungarian, maximal total affinity). Tracks left over (fragments of
   a person after occlusion or a cut) then join, in order of decreasing affinity, the reference they match best
   among those whose assigned tracks they do not overlap in time. A reference with no track is **missing**.
5. **Aggregation.** Per character: mean cosine over the sampled frames where its face is found; the
   face-found rate (found / sampled) is reported beside it, frames without a face are never silently dropped.
   Clip CSIM: mean over characters, a missing character scoring ``MISSING_SCORE`` (0.0) so that it pulls the
   score down instead of being averaged away. Windows: the same within consecutive ``window_s`` spans (default
   10 s; a trailing span shorter than half a window joins the previous one), characters not seen in a window
   are left out of that window's mean (its face-found rate shows it); the worst window is the minimum.
   Benchmark: mean of clip CSIMs with a bootstrap standard error (``aggregate``).
6. **Status.** ``unavailable`` (with reason) when the backbone cannot run, a reference image has no face, or no
   face is found in any sampled frame (face-found rate 0 is still reported).

Backbones are never ranked together: rows carry ``backbone`` and ``backbone_sha256``; ``protocol_version``
names the stride and window so that different settings never compare either.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from kling.clock import FPS

PROTOCOL_NAME = "csim-v1"
MISSING_SCORE = 0.0
WINDOW_ALL = "all"  # eval.leaderboard.schema.WHOLE
AGGREGATE = "__all__"  # eval.leaderboard.schema.AGGREGATE: clip_id of a row over clips

PROTOCOL: dict = {
    "name": PROTOCOL_NAME,
    "fps": float(FPS),  # a float, as recorded protocols have always shown it
    "stride_frames": 5,
    "window_s": 10.0,
    "trailing_window_min_fraction": 0.5,
    "reference_face": "largest detected face per reference image",
    "frame_faces": "detected (not interpolated) faces of the character's tracks in sampled frames",
    "alignment": "arcface: 5-point similarity warp to the insightface template, 112x112 (norm_crop); "
    "dlib: 68-point face chip 150x150",
    "similarity": "cosine of L2-normalised embeddings",
    "assignment": "Hungarian on mean track-reference cosine, then leftover tracks join the best "
    "non-overlapping reference",
    "aggregation": "mean over found frames per character; clip = mean over characters (missing = 0.0); "
    "window = same within window; worst = min window; benchmark = mean over clips, bootstrap stderr",
    "missing_score": MISSING_SCORE,
}


def protocol(stride_frames: int | None = None, window_s: float | None = None, fps: float | None = None) -> dict:
    """The protocol dict with the given settings and its version string."""
    p = dict(PROTOCOL)
    if stride_frames is not None:
        p["stride_frames"] = int(stride_frames)
    if window_s is not None:
        p["window_s"] = float(window_s)
    if fps is not None:
        p["fps"] = float(fps)
    if p["stride_frames"] < 1 or p["window_s"] <= 0 or p["fps"] <= 0:
        raise ValueError(f"invalid CSIM protocol settings: stride {p['stride_frames']}, window {p['window_s']}")
    p["version"] = f"{PROTOCOL_NAME}/fps{p['fps']:g}/s{p['stride_frames']}/w{p['window_s']:g}"
    return p


# ----------------------------------------------------------------------------------------------- assignment


def assign_tracks(affinity: np.ndarray, track_frames: list[np.ndarray]) -> list[list[int]]:
    """Track indices per reference (step 4 of the protocol).

    affinity: (n_refs, n_tracks) mean cosine; track_frames: the sampled frame indices each track has a face in.
    """
    n_refs, n_tracks = affinity.shape
    assigned: list[list[int]] = [[] for _ in range(n_refs)]
    if n_tracks == 0 or n_refs == 0:
        return assigned
    rows, cols = linear_sum_assignment(-affinity)
    used = set()
    occupied: list[set[int]] = [set() for _ in range(n_refs)]
    for r, t in zip(rows, cols):
        assigned[r].append(int(t))
        used.add(int(t))
        occupied[r].update(track_frames[t].tolist())
    # Leftover tracks, most similar pairs first; a track joins at most one reference.
    pairs = sorted(
        ((affinity[r, t], r, t) for t in range(n_tracks) if t not in used for r in range(n_refs)),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    for _, r, t in pairs:
        if t in used:
            continue
        frames = set(track_frames[t].tolist())
        if frames & occupied[r]:
            continue
        assigned[r].append(int(t))
        used.add(int(t))
        occupied[r].update(frames)
    return [sorted(a) for a in assigned]


# ------------------------------------------------------------------------------------------------ windows


def window_edges(n_frames: int, fps: float, window_s: float, min_fraction: float = 0.5) -> list[tuple[int, int]]:
    """[start, end) frame ranges of the time windows; a short trailing window joins the previous one."""
    if n_frames <= 0:
        return []
    step = window_s * fps
    n = max(1, math.ceil(n_frames / step - 1e-9))
    edge = lambda i: int(math.floor(i * step + 0.5))  # noqa: E731 - half up, not Python's half-even
    edges = [(edge(i), min(n_frames, edge(i + 1))) for i in range(n)]
    if len(edges) > 1 and (edges[-1][1] - edges[-1][0]) < min_fraction * step:
        last = edges.pop()
        edges[-1] = (edges[-1][0], last[1])
    return edges


@dataclass
class WindowScore:
    index: int
    start_s: float
    end_s: float
    csim: float | None  # None: no character found in the window
    face_found_rate: float
    n_sampled: int

    @property
    def label(self) -> str:
        return f"{self.start_s:g}-{self.end_s:g}s"


@dataclass
class CharacterScore:
    index: int
    reference: str
    csim: float | None  # None when missing (the clip mean then uses MISSING_SCORE)
    face_found_rate: float
    n_sampled: int
    n_found: int
    tracks: list[int]
    missing: bool
    windows: list[float | None] = field(default_factory=list)


def score_faces(
    faces: pd.DataFrame,
    n_frames: int,
    references: list[str],
    proto: dict,
) -> tuple[list[CharacterScore], list[WindowScore]]:
    """Per-character and per-window scores from sampled-face similarities (steps 4-5).

    faces: one row per embedded face in a sampled frame: ``frame``, ``track_id`` and ``sim`` (list, one cosine
    per reference). n_frames: length of the video on the protocol timeline.
    """
    stride, fps = proto["stride_frames"], proto["fps"]
    sampled = np.arange(0, n_frames, stride)
    if len(faces):
        faces = faces[(faces["frame"] % stride == 0) & (faces["frame"] < n_frames)]
    n_refs = len(references)
    track_ids = sorted(faces["track_id"].unique().tolist()) if len(faces) else []
    sims = np.stack(faces["sim"].to_numpy()) if len(faces) else np.zeros((0, n_refs))
    frames = faces["frame"].to_numpy(np.int64) if len(faces) else np.zeros(0, np.int64)
    tids = faces["track_id"].to_numpy() if len(faces) else np.zeros(0)
    affinity = np.zeros((n_refs, len(track_ids)))
    track_frames = []
    for j, t in enumerate(track_ids):
        m = tids == t
        affinity[:, j] = sims[m].mean(axis=0)
        track_frames.append(np.unique(frames[m]))
    assigned = assign_tracks(affinity, track_frames)

    edges = window_edges(n_frames, fps, proto["window_s"], proto["trailing_window_min_fraction"])
    win_of = np.searchsorted([e[1] for e in edges], sampled, side="right") if edges else np.zeros(0, int)
    win_sampled = np.bincount(win_of, minlength=len(edges)) if edges else np.zeros(0, int)

    characters: list[CharacterScore] = []
    per_char_frame_sims: list[dict[int, float]] = []
    for r in range(n_refs):
        track_set = [track_ids[j] for j in assigned[r]]
        m = np.isin(tids, track_set)
        # One face per frame per character (tracks of one character never overlap, by construction).
        by_frame = dict(zip(frames[m].tolist(), sims[m, r].tolist()))
        per_char_frame_sims.append(by_frame)
        found = np.array([f in by_frame for f in sampled], bool)
        vals = np.array([by_frame[f] for f in sampled if f in by_frame], np.float64)
        win_vals = []
        for w in range(len(edges)):
            wm = (win_of == w) & found
            win_vals.append(float(np.mean([by_frame[f] for f in sampled[wm]])) if wm.any() else None)
        characters.append(CharacterScore(
            index=r,
            reference=references[r],
            csim=float(vals.mean()) if len(vals) else None,
            face_found_rate=float(found.mean()) if len(sampled) else 0.0,
            n_sampled=int(len(sampled)),
            n_found=int(found.sum()),
            tracks=[int(t) for t in track_set],
            missing=len(vals) == 0,
            windows=win_vals,
        ))

    windows = []
    for w, (a, b) in enumerate(edges):
        vals = [c.windows[w] for c in characters if c.windows[w] is not None]
        found_w = sum(sum(1 for f in sampled[win_of == w] if f in d) for d in per_char_frame_sims)
        denom = max(1, int(win_sampled[w]) * n_refs)
        windows.append(WindowScore(
            index=w,
            start_s=round(a / fps, 6),
            end_s=round(b / fps, 6),
            csim=float(np.mean(vals)) if vals else None,
            face_found_rate=found_w / denom,
            n_sampled=int(win_sampled[w]),
        ))
    return characters, windows


def clip_csim(characters: list[CharacterScore]) -> float | None:
    """Mean over characters; missing ones count as MISSING_SCORE; None when no character is found at all."""
    if not characters or all(c.missing for c in characters):
        return None
    return float(np.mean([MISSING_SCORE if c.missing else c.csim for c in characters]))


def worst_window(windows: list[WindowScore]) -> WindowScore | None:
    scored = [w for w in windows if w.csim is not None]
    return min(scored, key=lambda w: (w.csim, w.index)) if scored else None


# ------------------------------------------------------------------------------------------------- result


@dataclass
class IdentityResult:
    status: str  # "ok" | "unavailable"
    reason: str | None
    clip_id: str
    backbone: str
    backbone_sha256: str | None
    protocol: dict
    csim: float | None = None
    face_found_rate: float | None = None
    n_sampled: int = 0
    windows: list[WindowScore] = field(default_factory=list)
    characters: list[CharacterScore] = field(default_factory=list)
    detector: dict | None = None

    @property
    def protocol_version(self) -> str:
        return self.protocol["version"]

    @property
    def worst_window(self) -> WindowScore | None:
        return worst_window(self.windows)

    @property
    def missing_characters(self) -> list[int]:
        return [c.index for c in self.characters if c.missing]

    def to_dict(self) -> dict:
        ww = self.worst_window
        return {
            "clip_id": self.clip_id,
            "status": self.status,
            "reason": self.reason,
            "csim": self.csim,
            "csim_windows": [asdict(w) | {"label": w.label} for w in self.windows],
            "worst_window": (asdict(ww) | {"label": ww.label}) if ww else None,
            "face_found_rate": self.face_found_rate,
            "n_sampled": self.n_sampled,
            "characters": [asdict(c) for c in self.characters],
            "missing_characters": self.missing_characters,
            "backbone": self.backbone,
            "backbone_sha256": self.backbone_sha256,
            "protocol_version": self.protocol_version,
            "protocol": self.protocol,
            "detector": self.detector,
        }

    def to_rows(self) -> list[dict]:
        """Leaderboard rows (DESIGN.md section 3) without the run-level fields the caller adds."""
        base = dict(
            clip_id=self.clip_id, backbone=self.backbone, backbone_sha256=self.backbone_sha256,
            protocol_version=self.protocol_version, status=self.status, reason=self.reason,
        )

        def row(metric, value, n, window=WINDOW_ALL, higher=True):
            v = float("nan") if value is None else float(value)
            return base | dict(metric=metric, value=v, stderr=None, n=int(n), higher_is_better=higher,
                               window=window)

        n_chars = max(1, len(self.characters))
        rows = [
            row("csim", self.csim, self.n_sampled * n_chars),
            row("face_found_rate", self.face_found_rate, self.n_sampled * n_chars),
            row("csim_missing_characters", len(self.missing_characters), n_chars, higher=False),
        ]
        ww = self.worst_window
        rows.append(row("csim_worst_window", ww.csim if ww else None, ww.n_sampled if ww else 0,
                        window=ww.label if ww else WINDOW_ALL))
        for w in self.windows:
            rows.append(row("csim", w.csim, w.n_sampled * n_chars, window=w.label))
            rows.append(row("face_found_rate", w.face_found_rate, w.n_sampled * n_chars, window=w.label))
        if len(self.characters) > 1:
            for c in self.characters:
                rows.append(row(f"csim_char{c.index}", c.csim, c.n_sampled))
                rows.append(row(f"face_found_rate_char{c.index}", c.face_found_rate, c.n_sampled))
        return rows


def bootstrap_mean(values, n_boot: int = 1000, seed: int = 0) -> tuple[float, float | None]:
    """Mean and bootstrap standard error of the mean (None with fewer than 2 values)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if len(x) == 0:
        return float("nan"), None
    if len(x) < 2:
        return float(x.mean()), None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return float(x.mean()), float(means.std(ddof=1))


def aggregate(results: list[IdentityResult]) -> list[dict]:
    """Benchmark-level rows: mean clip CSIM (bootstrap stderr), mean face-found rate, per backbone+protocol."""
    groups: dict[tuple, list[IdentityResult]] = {}
    for r in results:
        groups.setdefault((r.backbone, r.backbone_sha256, r.protocol_version), []).append(r)
    rows = []
    for (backbone, sha, version), rs in groups.items():
        ok = [r for r in rs if r.status == "ok"]
        base = dict(clip_id=AGGREGATE, window=WINDOW_ALL, backbone=backbone, backbone_sha256=sha,
                    protocol_version=version, status="ok" if ok else "unavailable",
                    reason=None if ok else (rs[0].reason or "no clip scored"))
        for metric, vals in (
            ("csim", [r.csim for r in ok]),
            ("face_found_rate", [r.face_found_rate for r in rs if r.face_found_rate is not None]),
            ("csim_worst_window", [r.worst_window.csim for r in ok if r.worst_window]),
        ):
            mean, se = bootstrap_mean(vals)
            rows.append(base | dict(metric=metric, value=mean, stderr=se, n=len(vals), higher_is_better=True))
        rows.append(base | dict(metric="clips_unavailable", value=float(len(rs) - len(ok)), stderr=None,
                                n=len(rs), higher_is_better=False))
    return rows
