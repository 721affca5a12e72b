"""Measured (offline) checkers: head motion, camera, mouth activity, people count and placement.

All checkers read one ``VideoSignals`` built from the face-track table (kling.perception.faces.tracks), head pose
(kling.perception.faces.pose, solvePnP on the landmarks) and voice activity (kling.perception.speech). The *main face* is the
longest face track; its detected (not interpolated) rows give the per-frame signals.

- head motion: yaw and pitch come from solvePnP on the main face's 5 points (kling.perception.faces.pose.head_pose; the
  eye centres average six 68-model points each, so on the demo corpus the 5-point fit jitters half as much as
  the 68-point one), then a 5-frame median filter and a 0.4-3 Hz band-pass (nods and shakes live there; landmark
  jitter and slow sway do not). Their RMS in sliding 2 s windows (0.5 s hop) is the motion energy. Nod: some
  window with pitch RMS >= ``motion_min_deg`` and >= ``dominance`` x yaw RMS; shake: the same with yaw; still:
  every window below ``still_max_deg`` on both axes (slow drift below 0.4 Hz is not counted as motion).
- camera: a straight line fitted to log(inter-ocular distance) over the span gives the zoom (total log change);
  one fitted to the face centre's x (fraction of the width) gives the pan (camera panning left moves the subject
  right in the frame). Zoom in/out: |change| >= log(``zoom_min_ratio``); static: below log(``static_max_ratio``)
  and |pan| < ``static_max_pan``. A head moving towards the camera reads as a zoom: the face is the only cue.
- mouth: ``speaking`` needs voice activity in the span (else unavailable); value = std of mouth opening over the
  speech frames, satisfied at >= ``speaking_min_std``. ``closed``: 90th percentile of mouth opening below
  ``closed_max_open``.
- people count: the most frequent number of detected faces per frame in the span; placement: the main face's
  median centre in the left, middle or right third.

Every check returns a ``Check`` (satisfied or not, or unavailable with a reason), the measured value and the
threshold it was compared with, so a failed assertion says by how much it failed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kling.clock import FPS

THRESHOLDS: dict = {
    "version": "adherence-measured-v1",
    "median_frames": 5,
    "band_hz": [0.4, 3.0],
    "motion_window_s": 2.0,
    "motion_hop_s": 0.5,
    "min_coverage": 0.5,
    "motion_min_deg": 2.5,
    "dominance": 2.0,
    "still_max_deg": 2.0,
    "zoom_min_ratio": 1.15,
    "static_max_ratio": 1.08,
    "pan_min": 0.1,
    "static_max_pan": 0.06,
    "speaking_min_std": 0.03,
    "min_speech_s": 0.5,
    "closed_max_open": 0.12,
}


@dataclass
class Check:
    status: str  # "satisfied" | "failed" | "unavailable"
    value: float | None = None
    threshold: float | None = None
    reason: str | None = None


@dataclass
class VideoSignals:
    """Per-frame signals of one video on the 25 fps timeline (NaN where the main face is not detected)."""

    fps: float
    n_frames: int
    width: int
    height: int
    yaw: np.ndarray  # degrees, solvePnP on the main face's 5 points
    pitch: np.ndarray
    scale: np.ndarray  # inter-ocular distance, pixels
    cx: np.ndarray  # face centre, fraction of width
    mouth_open: np.ndarray
    n_faces: np.ndarray  # detected faces per frame (any track)
    speech: np.ndarray | None  # bool per frame; None when there is no usable audio
    speech_reason: str | None = None
    yaw_band: np.ndarray | None = None  # median-filtered, band-passed (see THRESHOLDS["band_hz"])
    pitch_band: np.ndarray | None = None

    def __post_init__(self):
        if self.yaw_band is None:
            self.yaw_band = band_pass(self.yaw, self.fps)
        if self.pitch_band is None:
            self.pitch_band = band_pass(self.pitch, self.fps)

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def frames(self, start_s: float, end_s: float) -> slice:
        a = max(0, int(round(start_s * self.fps)))
        b = min(self.n_frames, int(round(end_s * self.fps)))
        return slice(a, max(a, b))


def signals_from_tracks(tracks: pd.DataFrame, n_frames: int, width: int, height: int, fps: float = float(FPS),
                        speech: np.ndarray | None = None, speech_reason: str | None = None) -> VideoSignals:
    """Build VideoSignals from a face-track table (columns of kling.perception.faces.tracks)."""
    from kling.perception.faces.pose import head_pose

    nan = lambda: np.full(n_frames, np.nan)  # noqa: E731
    yaw, pitch, scale, cx, mouth = nan(), nan(), nan(), nan(), nan()
    n_faces = np.zeros(n_frames, np.int64)
    det = tracks
    if len(det) and "interpolated" in det.columns:
        det = det[~det["interpolated"].astype(bool)]
    det = det[(det["frame"] >= 0) & (det["frame"] < n_frames)] if len(det) else det
    if len(det):
        counts = det.groupby("frame").size()
        n_faces[counts.index.to_numpy(np.int64)] = counts.to_numpy()
        main_id = det["track_id"].value_counts().sort_index().idxmax()
        main = det[det["track_id"] == main_id].sort_values("frame").reset_index(drop=True)
        f = main["frame"].to_numpy(np.int64)
        lm5 = np.stack([np.asarray(v, np.float64).reshape(5, 2) for v in main["lm5"]])
        pose = head_pose(lm5, width, height)
        yaw[f], pitch[f] = pose[:, 0], pose[:, 1]
        scale[f] = np.linalg.norm(lm5[:, 1] - lm5[:, 0], axis=1)
        cx[f] = (main["x0"].to_numpy(float) + main["x1"].to_numpy(float)) / 2.0 / width
        if "mouth_open" in main.columns:
            mouth[f] = main["mouth_open"].to_numpy(float)
    if speech is not None:
        speech = np.resize(np.asarray(speech, bool), n_frames) if len(speech) else np.zeros(n_frames, bool)
        if len(speech) != n_frames:
            speech = speech[:n_frames]
    return VideoSignals(fps, n_frames, width, height, yaw, pitch, scale, cx, mouth, n_faces, speech, speech_reason)


# ------------------------------------------------------------------------------------------- head motion


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True."""
    d = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def band_pass(x: np.ndarray, fps: float, th: dict = THRESHOLDS, max_gap: int = 5) -> np.ndarray:
    """Median filter then zero-phase band-pass, per run of measured frames (gaps up to max_gap interpolated)."""
    from scipy.signal import butter, medfilt, sosfiltfilt

    x = np.asarray(x, np.float64)
    out = np.full_like(x, np.nan)
    valid = np.isfinite(x)
    if valid.sum() < 2:
        return out
    idx = np.flatnonzero(valid)
    filled = x.copy()
    gaps = ~valid & (np.arange(len(x)) > idx[0]) & (np.arange(len(x)) < idx[-1])
    filled[gaps] = np.interp(np.flatnonzero(gaps), idx, x[idx])
    for a, b in _runs(gaps):  # long gaps stay gaps
        if b - a > max_gap:
            filled[a:b] = np.nan
    lo, hi = th["band_hz"]
    sos = butter(2, [lo, min(hi, 0.45 * fps)], btype="band", fs=fps, output="sos")
    k = th["median_frames"]
    for a, b in _runs(np.isfinite(filled)):
        seg = filled[a:b]
        if len(seg) <= 3 * (2 * len(sos) + 1):  # too short for filtfilt's padding
            continue
        seg = medfilt(seg, k) if k > 1 and len(seg) >= k else seg
        out[a:b] = sosfiltfilt(sos, seg)
    return out


def motion_energy(sig: VideoSignals, start_s: float, end_s: float, th: dict = THRESHOLDS):
    """(pitch_rms, yaw_rms) per sliding window in the span, or a reason string when it cannot be measured."""
    sl = sig.frames(start_s, end_s)
    n = sl.stop - sl.start
    if n < sig.fps:  # under a second
        return f"span too short ({n / sig.fps:.2f} s)"
    pitch = (sig.pitch_band if th is THRESHOLDS else band_pass(sig.pitch, sig.fps, th))[sl]
    yaw = (sig.yaw_band if th is THRESHOLDS else band_pass(sig.yaw, sig.fps, th))[sl]
    coverage = float(np.isfinite(pitch).mean())
    if coverage < th["min_coverage"]:
        return f"main face found in {coverage:.0%} of the span"
    w = min(n, int(round(th["motion_window_s"] * sig.fps)))
    hop = max(1, int(round(th["motion_hop_s"] * sig.fps)))
    out = []
    for a in range(0, n - w + 1, hop):
        p, y = pitch[a:a + w], yaw[a:a + w]
        ok = np.isfinite(p) & np.isfinite(y)
        if ok.mean() < th["min_coverage"]:
            continue
        out.append((float(np.sqrt(np.mean(p[ok] ** 2))), float(np.sqrt(np.mean(y[ok] ** 2)))))
    if not out:
        return "no window with enough face coverage"
    return np.array(out)


def check_head_motion(sig: VideoSignals, value: str, start_s: float, end_s: float, th: dict = THRESHOLDS) -> Check:
    e = motion_energy(sig, start_s, end_s, th)
    if isinstance(e, str):
        return Check("unavailable", reason=e)
    pitch, yaw = e[:, 0], e[:, 1]
    if value == "still":
        worst = float(np.max(np.maximum(pitch, yaw)))
        return Check("satisfied" if worst <= th["still_max_deg"] else "failed", worst, th["still_max_deg"])
    main, other = (pitch, yaw) if value == "nod" else (yaw, pitch)
    dominant = main >= th["dominance"] * other
    if dominant.any():
        energy = float(main[dominant].max())
        ok = energy >= th["motion_min_deg"]
        return Check("satisfied" if ok else "failed", energy, th["motion_min_deg"])
    other_axis = "yaw" if value == "nod" else "pitch"
    return Check("failed", float(main.max()), th["motion_min_deg"],
                 f"{other_axis} motion dominates in every window (needs {th['dominance']}x)")


# ------------------------------------------------------------------------------------------------ camera


def _trend(x: np.ndarray, fps: float) -> tuple[float, float] | None:
    """(total change over the span, coverage) of a least-squares line through the finite values."""
    t = np.arange(len(x)) / fps
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return None
    slope = np.polyfit(t[ok], x[ok], 1)[0]
    return float(slope * (len(x) - 1) / fps), float(ok.mean())


def check_camera(sig: VideoSignals, value: str, start_s: float, end_s: float, th: dict = THRESHOLDS) -> Check:
    sl = sig.frames(start_s, end_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        zoom = _trend(np.log(sig.scale[sl]), sig.fps)
    pan = _trend(sig.cx[sl], sig.fps)
    if zoom is None or pan is None or zoom[1] < th["min_coverage"]:
        cov = 0.0 if zoom is None else zoom[1]
        return Check("unavailable", reason=f"main face found in {cov:.0%} of the span")
    dz, dx = zoom[0], pan[0]
    if value in ("zoom_in", "zoom_out"):
        t = math.log(th["zoom_min_ratio"])
        v = dz if value == "zoom_in" else -dz
        return Check("satisfied" if v >= t else "failed", math.exp(dz), th["zoom_min_ratio"] if value == "zoom_in"
                     else 1.0 / th["zoom_min_ratio"])
    if value in ("pan_left", "pan_right"):
        v = dx if value == "pan_left" else -dx  # the subject moves the other way
        return Check("satisfied" if v >= th["pan_min"] else "failed", dx, th["pan_min"])
    # static: neither zoom nor pan
    still = abs(dz) < math.log(th["static_max_ratio"]) and abs(dx) < th["static_max_pan"]
    return Check("satisfied" if still else "failed", math.exp(dz), th["static_max_ratio"],
                 None if still else f"zoom ratio {math.exp(dz):.3f}, pan {dx:+.3f} of the width")


# ------------------------------------------------------------------------------------- mouth, people, place


def check_mouth(sig: VideoSignals, value: str, start_s: float, end_s: float, th: dict = THRESHOLDS) -> Check:
    sl = sig.frames(start_s, end_s)
    m = sig.mouth_open[sl]
    if np.isfinite(m).mean() < th["min_coverage"] if len(m) else True:
        return Check("unavailable", reason="mouth not measured in most of the span (no face or no 68 landmarks)")
    if value == "closed":
        p90 = float(np.nanpercentile(m, 90))
        return Check("satisfied" if p90 <= th["closed_max_open"] else "failed", p90, th["closed_max_open"])
    if sig.speech is None:
        return Check("unavailable", reason=sig.speech_reason or "no audio")
    sp = sig.speech[sl] & np.isfinite(m)
    if sp.sum() < th["min_speech_s"] * sig.fps:
        return Check("unavailable", reason=f"no speech in the span ({sp.sum() / sig.fps:.2f} s of voice activity)")
    std = float(np.std(m[sp]))
    return Check("satisfied" if std >= th["speaking_min_std"] else "failed", std, th["speaking_min_std"])


def check_people_count(sig: VideoSignals, value: str, start_s: float, end_s: float, th: dict = THRESHOLDS) -> Check:
    sl = sig.frames(start_s, end_s)
    counts = sig.n_faces[sl]
    if not len(counts):
        return Check("unavailable", reason="empty span")
    mode = int(np.bincount(counts).argmax())
    return Check("satisfied" if mode == int(value) else "failed", float(mode), float(value))


def check_placement(sig: VideoSignals, value: str, start_s: float, end_s: float, th: dict = THRESHOLDS) -> Check:
    sl = sig.frames(start_s, end_s)
    x = sig.cx[sl]
    if not len(x) or np.isfinite(x).mean() < th["min_coverage"]:
        return Check("unavailable", reason="main face found in under half of the span")
    med = float(np.nanmedian(x))
    where = "left" if med < 1 / 3 else "right" if med > 2 / 3 else "center"
    return Check("satisfied" if where == value else "failed", med, None, None if where == value else f"face is {where}")


CHECKERS = {
    "head_motion": check_head_motion,
    "camera": check_camera,
    "mouth": check_mouth,
    "people_count": check_people_count,
    "placement": check_placement,
}


def check(sig: VideoSignals, kind: str, value: str, start_s: float, end_s: float, th: dict = THRESHOLDS) -> Check:
    if kind not in CHECKERS:
        return Check("unavailable", reason=f"no measured checker for {kind}")
    from kling.perception.faces.tracks import FaceTrackConfig, no_track_reason

    code, detail = no_track_reason({"n_frames": sig.n_frames}, FaceTrackConfig())
    if code == "too_short":  # every checker reads the face tracks, and a video this short has none
        return Check("unavailable", reason=f"too_short: {detail}")
    return CHECKERS[kind](sig, value, start_s, end_s, th)


def video_signals(video, face_tracks: pd.DataFrame | None = None, detector="auto", with_speech: bool = True,
                  fps: float = float(FPS)) -> VideoSignals:
    """Signals of a video file: face tracks (computed when not given), head pose and voice activity."""
    from kling.io.probe import probe

    info = probe(video)
    if face_tracks is None:  # the table lip sync and identity read too: split at scene cuts
        from kling.perception.faces.tracks import FaceTrackConfig, shot_aware_tracks

        face_tracks = shot_aware_tracks(video, detector, config=FaceTrackConfig(fps=fps))
    n_frames = max(int(round(info.duration_s * fps)), int(face_tracks["frame"].max()) + 1 if len(face_tracks) else 0)
    speech, reason = None, None
    if with_speech:
        from kling.perception.speech import detect_speech_file

        res = detect_speech_file(video, fps=fps, n_frames=n_frames)
        speech, reason = (None, res.reason) if res.reason in ("no_audio", "silent") else (res.frame_speech, res.reason)
    w, h = info.width, info.height
    if info.rotation in (90, 270, -90):
        w, h = h, w
    return signals_from_tracks(face_tracks, n_frames, w, h, fps, speech, reason)
