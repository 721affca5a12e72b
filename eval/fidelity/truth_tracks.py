"""The ground truth's face tracks, computed once per file and kept on disk.

Every system of a benchmark is scored against the same ground-truth videos, and LMD (lmd-v2) reads the
ground truth's landmarks from its face-track table (kling.perception.faces.tracks.shot_aware_tracks, the
table every metric reads). Tracking a video costs about as much as the rest of its evaluation, so the table
is computed by the first run that needs it and read back by the others.

Key: the file's sha256 (its bytes, not its name: a moved file still hits, a changed byte misses), the
detector's name, the face-track config hash (config + the detector's parameters and weight hashes, as the
table's summary records it), the face-track protocol version and the shot detector's parameters (the tables
split at cuts). Layout: ``<feature cache>/face_tracks/<key[:2]>/<key>.parquet``, the table with its exact
schema (FACE_TRACKS_SCHEMA) and its summary in the Parquet metadata; written atomically, so runs sharing the
cache in parallel see a whole table or none (two that miss together both compute it, and write the same).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from kling.hashing import config_hash
from kling.perception.faces.tracks import FaceTrackConfig

log = logging.getLogger(__name__)

KIND = "face_tracks"


def truth_tracks(video: str | Path, detector=None, config: FaceTrackConfig = FaceTrackConfig(),
                 root: str | Path | None = None, enabled: bool = True) -> pd.DataFrame:
    """shot_aware_tracks(video, detector, config), from the cache when this file was tracked before with the
    same detector and config (`root`: the cache folder, default kling.paths.feature_cache_dir(); `enabled`
    False computes and stores nothing). The table carries its summary in attrs["face_track_summary"]."""
    from kling.perception.faces.detect import load_detector
    from kling.perception.faces.tracks import detector_params, shot_aware_tracks

    if detector is None or isinstance(detector, str):
        detector = load_detector(detector or config.detector, **detector_params(config))
    if not enabled:
        return shot_aware_tracks(video, detector, config)
    path = cache_path(video, detector, config, root)
    cached = _read(path)
    if cached is not None:
        return cached
    tracks = shot_aware_tracks(video, detector, config)
    _write(path, tracks)
    return tracks


def cache_path(video: str | Path, detector, config: FaceTrackConfig = FaceTrackConfig(),
               root: str | Path | None = None) -> Path:
    """Where the table of `video` tracked by `detector` with `config` is kept."""
    from eval.fid.cache import content_sha256, default_root
    from kling.perception.faces.tracks import PROTOCOL_VERSION, tracks_config_hash
    from kling.perception.shots import ShotDetector

    info = detector.info() if hasattr(detector, "info") else {}
    key = config_hash({"kind": KIND, "content": content_sha256(video),
                       "detector": info.get("name", getattr(detector, "name", "?")),
                       "config_hash": tracks_config_hash(config, detector), "protocol": PROTOCOL_VERSION,
                       "shots": ShotDetector()})  # its fields: the cut detector's parameters
    return Path(root if root is not None else default_root()) / KIND / key[:2] / f"{key}.parquet"


def _read(path: Path) -> pd.DataFrame | None:
    import pyarrow.parquet as pq

    from kling.atomic import read_parquet_metadata

    if not path.is_file():
        return None
    try:
        tracks = pq.read_table(path).to_pandas()
        tracks.attrs["face_track_summary"] = read_parquet_metadata(path)["face_track_summary"]
    except (OSError, ValueError, KeyError) as exc:  # a damaged entry is recomputed, not trusted
        log.warning("face-track cache entry %s unreadable (%s); recomputing", path, exc)
        return None
    return tracks


def _write(path: Path, tracks: pd.DataFrame) -> None:
    from kling.atomic import write_parquet_atomic
    from kling.perception.faces.tracks import FaceTrackResult

    summary = tracks.attrs.get("face_track_summary", {})
    write_parquet_atomic(FaceTrackResult(tracks).to_arrow(), path, {"face_track_summary": summary})
