"""Video -> lip-sync result, for one or many videos with one model load.

Two entry modes, both streamed (frames go from the decoder into batched forward passes; nothing is
written to disk):

- ``evaluate_cropped``: the video already is a face crop (the reference demo's input);
- ``evaluate_video``: the full pipeline; face tracks (kling.perception.faces.tracks, or a table passed in)
  -> reference crops per track (kling.perception.sync.crop) -> scores per track -> the speaker's numbers.

Every failure that is a property of the input (no face track, too short, silent or missing audio,
unreadable media, missing weights) gives a ``SyncResult`` with status ``unavailable`` and the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from kling.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from kling.perception.sync.audio import compute_mfcc, frames_covered, level_dbfs, to_int16_scale
from kling.perception.sync.crop import CROP_SIZE, TrackBoxes, TrackCropper, fill_track
from kling.perception.sync.engine import FusedSyncNet, LipStream
from kling.perception.sync.model import SyncNetConfig, SyncWeightsError, load_syncnet
from kling.perception.sync.score import (
    MIN_FRAMES,
    PROTOCOL_VERSION,
    UNAVAILABLE,
    SyncResult,
    TrackSyncResult,
    offset_curve,
)

log = logging.getLogger(__name__)

OFFICIAL = "syncnet_v2"


@dataclass
class SyncBackbone:
    """A loaded network and what identifies its numbers (never mixed across names/protocols)."""

    name: str
    sha256: str
    net: FusedSyncNet
    protocol_version: str = PROTOCOL_VERSION
    silence_dbfs: float = -60.0
    prep: Callable[[np.ndarray], np.ndarray] | None = None  # 224 face crops -> the net's input frames
    meta: dict = field(default_factory=dict)


def load_official(weights: str | Path | None = None) -> SyncBackbone:
    """The official SyncNet through the weights registry (raises kling.weights.WeightsUnavailable)."""
    from kling.weights import WeightsUnavailable, resolve, sha256_of

    path = resolve(OFFICIAL, path=weights)
    try:
        net = load_syncnet(path, SyncNetConfig())
    except SyncWeightsError as exc:
        raise WeightsUnavailable(str(exc), f"kling weights fetch {OFFICIAL}") from exc
    return SyncBackbone(name=OFFICIAL, sha256=sha256_of(path), net=FusedSyncNet(net), meta={"path": str(path)})


def _unavailable(video: str, backbone: SyncBackbone | None, reason: str, **kw) -> SyncResult:
    r = SyncResult(video=video, status=UNAVAILABLE, reason=reason, **kw)
    if backbone is not None:
        r.backbone, r.backbone_sha256, r.protocol_version = backbone.name, backbone.sha256, backbone.protocol_version
    return r


def _read_audio(video: Path, audio: Path | None) -> np.ndarray | None:
    from kling.io.audio import read_audio

    return read_audio(audio or video, sample_rate=SAMPLE_RATE)


class SyncEvaluator:
    """Holds one backbone; scores any number of videos. ``unavailable`` is set instead of raising when the
    backbone could not be loaded, so every call returns results saying why."""

    def __init__(self, backbone: SyncBackbone | None, batch_size: int = 32, unavailable: str | None = None,
                 fetch_command: str | None = None):
        self.backbone = backbone
        self.batch_size = batch_size
        self.unavailable = unavailable if backbone is None else None
        self.fetch_command = fetch_command

    @classmethod
    def official(cls, weights: str | Path | None = None, batch_size: int = 32) -> "SyncEvaluator":
        from kling.weights import WeightsUnavailable

        try:
            return cls(load_official(weights), batch_size=batch_size)
        except WeightsUnavailable as exc:
            return cls(None, batch_size, unavailable=f"{exc.reason} (fetch it with: {exc.fetch_command})",
                       fetch_command=exc.fetch_command)

    # -- core -------------------------------------------------------------------------------------------
    def new_stream(self) -> LipStream:
        assert self.backbone is not None
        return LipStream(self.backbone.net, batch_size=self.batch_size)

    def push(self, stream: LipStream, crops: np.ndarray) -> None:
        """Feed 224x224 RGB face crops of one track to its stream (through the backbone's input step)."""
        if self.backbone is not None and self.backbone.prep is not None:
            crops = self.backbone.prep(crops)
        stream.push(crops)

    def score_stream(self, stream: LipStream, audio: np.ndarray | None, track_id: int = 0, start_frame: int = 0,
                     warnings: list[str] | None = None) -> TrackSyncResult:
        """Scores of one track whose frames were all pushed; `audio` = its samples (float or int16)."""
        n_video = stream.n_frames
        base = dict(track_id=track_id, start_frame=start_frame, n_frames=n_video)
        if audio is None or len(audio) == 0:
            return TrackSyncResult(status=UNAVAILABLE, reason="no audio", **base)
        db = level_dbfs(audio)
        silence = self.backbone.silence_dbfs if self.backbone else -60.0
        if db < silence:
            return TrackSyncResult(status=UNAVAILABLE, reason=f"silent audio ({db:.1f} dBFS < {silence:.0f} dBFS): lip sync undefined", **base)
        n_audio = frames_covered(len(audio))
        if warnings is not None and abs(len(audio) / SAMPLE_RATE - n_video / FPS) >= 1 / FPS:
            warnings.append(f"track {track_id}: audio {len(audio) / SAMPLE_RATE:.2f} s and video {n_video / FPS:.2f} s "
                            f"differ; the first {min(n_video, n_audio)} frames are scored")
        min_length = min(n_video, n_audio)
        n_windows = min_length - 5  # the reference's window count (it leaves out the last full window)
        if min_length < MIN_FRAMES:
            return TrackSyncResult(
                status=UNAVAILABLE,
                reason=f"too short: {min_length} frames of audio and video ({min_length / FPS:.2f} s); "
                       f"the minimum is {MIN_FRAMES} frames ({MIN_FRAMES / FPS:.2f} s at 25 fps)", **base)
        lip = stream.features()[:n_windows]
        mfcc = compute_mfcc(to_int16_scale(audio))  # of the whole track audio, as the reference
        aud = self.backbone.net.audio_features(mfcc, n_windows, batch_size=256)
        return TrackSyncResult.from_curve(offset_curve(lip, aud), **base)

    def _result(self, video: str) -> SyncResult:
        b = self.backbone
        return SyncResult(video=video, backbone=b.name, backbone_sha256=b.sha256, protocol_version=b.protocol_version)

    # -- one video --------------------------------------------------------------------------------------
    def evaluate_cropped(self, video: str | Path, audio: str | Path | None = None) -> SyncResult:
        """A video that is already a face crop (resized to 224x224 if it is not), scored as one track."""
        from kling.io.decode import iter_frames

        video = Path(video)
        if self.backbone is None:
            return _unavailable(str(video), None, self.unavailable, fetch_command=self.fetch_command)
        t0 = time.perf_counter()
        res = self._result(str(video))
        stream = self.new_stream()
        for chunk in iter_frames(video, fps=FPS, chunk_size=64):
            frames = chunk.frames
            if frames.shape[1:3] != (CROP_SIZE, CROP_SIZE):
                if not res.warnings:
                    res.warnings.append(f"frames {frames.shape[2]}x{frames.shape[1]} resized to {CROP_SIZE}x{CROP_SIZE}")
                frames = np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])
            self.push(stream, frames)
        samples = _read_audio(video, Path(audio) if audio else None)
        res.video_frames = stream.n_frames
        res.audio_frames = None if samples is None else frames_covered(len(samples))
        res.audio_dbfs = None if samples is None else level_dbfs(samples)
        res.tracks = [self.score_stream(stream, samples, 0, 0, res.warnings)]
        res.choose_speaker()
        res.seconds = time.perf_counter() - t0
        return res

    def evaluate_video(self, video: str | Path, audio: str | Path | None = None, tracks=None,
                       face_tracks_fn: Callable[[Path], object] | None = None) -> SyncResult:
        """Full pipeline. `tracks`: a face-track table (columns frame, track_id, x0, y0, x1, y1) on the
        25 fps timeline; computed with kling.perception.faces.tracks (or `face_tracks_fn`) when None."""
        from kling.io.frames import decode_once

        video = Path(video)
        if self.backbone is None:
            return _unavailable(str(video), None, self.unavailable, fetch_command=self.fetch_command)
        t0 = time.perf_counter()
        if tracks is None:
            tracks = (face_tracks_fn or _default_face_tracks)(video)
        consumer = self.consumer(video, tracks, samples=_read_audio(video, Path(audio) if audio else None))
        res = decode_once(video, {"sync": consumer}, fps=FPS, chunk_size=32)["sync"]
        res.seconds = time.perf_counter() - t0  # face tracking included
        return res

    def consumer(self, video: str | Path, tracks, samples: np.ndarray | None) -> "SyncConsumer":
        """A frame consumer (kling.io.frames) scoring `video` from a decode shared with other metrics; `tracks` is
        its face-track table, `samples` its 16 kHz audio (kling.io.audio.read_audio, None when it has none)."""
        return SyncConsumer(self, Path(video), tracks, samples)

    # -- many videos --------------------------------------------------------------------------------------
    def evaluate_many(self, videos: Iterable[str | Path], audio: str | Path | None = None, cropped: bool = False,
                      **kw) -> Iterator[SyncResult]:
        """One result per video, in order; media errors become ``unavailable`` results with the reason."""
        from kling.io.errors import MediaError

        for v in videos:
            try:
                yield self.evaluate_cropped(v, audio) if cropped else self.evaluate_video(v, audio, **kw)
            except MediaError as exc:
                r = _unavailable(str(v), self.backbone, f"{getattr(exc, 'reason', 'media_error')}: {exc}")
                yield r


class SyncConsumer:
    """Lip sync of one video fed chunk by chunk (kling.io.frames.decode_once): crops per face track go into
    batched forward passes as the frames arrive; ``finish`` scores every track and names the speaker."""

    def __init__(self, evaluator: SyncEvaluator, video: Path, tracks, samples: np.ndarray | None):
        self.t0 = time.perf_counter()
        self.ev, self.samples = evaluator, samples
        b = evaluator.backbone
        if b is None:
            self.result = _unavailable(str(video), None, evaluator.unavailable, fetch_command=evaluator.fetch_command)
            self.boxes = []
        else:
            self.result = evaluator._result(str(video))
            self.boxes = tracks_from_table(tracks)
            self.result.audio_frames = None if samples is None else frames_covered(len(samples))
            self.result.audio_dbfs = None if samples is None else level_dbfs(samples)
            if not self.boxes:  # too short for any track, or no face: said as curation says it
                from kling.perception.faces.tracks import no_track_reason

                code, detail = no_track_reason(getattr(tracks, "attrs", {}).get("face_track_summary"))
                self.result.status = UNAVAILABLE
                self.result.reason = f"too_short: {detail}" if code == "too_short" else "no face track"
        self.croppers = [TrackCropper(b) for b in self.boxes]
        self.streams = [evaluator.new_stream() for _ in self.boxes]

    @property
    def needs_frames(self) -> bool:
        return bool(self.boxes)

    def update(self, chunk) -> None:
        for cropper, stream in zip(self.croppers, self.streams):
            crops = cropper.crops(chunk.frames, chunk.start)
            if len(crops):
                self.ev.push(stream, crops)

    def finish(self, n_frames: int) -> SyncResult:
        res = self.result
        if not self.boxes:
            res.seconds = time.perf_counter() - self.t0
            return res
        res.video_frames = n_frames
        for b, cropper, stream in zip(self.boxes, self.croppers, self.streams):
            seg = None if self.samples is None else self.samples[b.start * SAMPLES_PER_FRAME : b.end * SAMPLES_PER_FRAME]
            t = self.ev.score_stream(stream, seg, b.track_id, b.start, res.warnings)
            t.mean_box_size = float(2 * np.mean(cropper.s))
            res.tracks.append(t)
        res.choose_speaker()
        if len(res.tracks) > 1 and res.ok:
            log.info("%s: %d face tracks scored, speaker = track %s (highest Sync-C)", Path(res.video).name,
                     len(res.tracks), res.speaker_track)
        res.seconds = time.perf_counter() - self.t0
        return res


def tracks_from_table(table) -> list[TrackBoxes]:
    """TrackBoxes per track_id of a face-track table (pandas DataFrame or pyarrow Table)."""
    if table is None:
        return []
    if hasattr(table, "to_pandas"):
        table = table.to_pandas()
    if hasattr(table, "tracks"):  # a FaceTrackResult
        table = table.tracks
    if len(table) == 0:
        return []
    out = []
    for tid, g in table.groupby("track_id", sort=True):
        out.append(fill_track(int(tid), g["frame"].to_numpy(), g[["x0", "y0", "x1", "y1"]].to_numpy()))
    return out


def _default_face_tracks(video: Path):
    """The face tracks every metric reads (kling.perception.faces.tracks.shot_aware_tracks: split at scene cuts,
    default detector), so `kling eval sync` and the evaluation suite score the same tracks. Lip sync reads only
    the boxes; the table is the one identity and adherence get, 68-point landmarks included."""
    from kling.perception.faces.tracks import shot_aware_tracks

    return shot_aware_tracks(video)


def evaluate_videos(videos: Iterable[str | Path], weights: str | Path | None = None, cropped: bool = False,
                    audio: str | Path | None = None, batch_size: int = 32, num_threads: int | None = None) -> list[SyncResult]:
    """Plain function for assets and scripts: official SyncNet on many videos, one model load."""
    if num_threads:
        torch.set_num_threads(num_threads)
    ev = SyncEvaluator.official(weights, batch_size=batch_size)
    return list(ev.evaluate_many(videos, audio=audio, cropped=cropped))
