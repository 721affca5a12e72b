"""Finding the raw videos of a source folder and naming each with a stable, partition-safe id."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".flv", ".mpg", ".mpeg", ".ts", ".wmv"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class VideoRef:
    video_id: str
    path: Path


def _safe_id(stem: str) -> str:
    return _UNSAFE.sub("_", stem).strip("._-")[:80] or "video"


def discover_videos(source_dir: str | Path, recursive: bool = True) -> list[VideoRef]:
    """Every file with a video suffix, sorted by relative path, with unique ids.

    The id is the sanitised file stem (a Dagster partition key and a file name); two files with the same
    stem in different sub-folders get a short hash of their relative path appended, so ids never depend on
    listing order. Unreadable files are still listed: the normalise step records why they are rejected.
    """
    root = Path(source_dir)
    if not root.is_dir():
        return []
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    stems: dict[str, int] = {}
    for p in files:
        stems[_safe_id(p.stem)] = stems.get(_safe_id(p.stem), 0) + 1
    refs = []
    for p in files:
        vid = _safe_id(p.stem)
        if stems[vid] > 1:
            rel = p.relative_to(root).as_posix()
            vid = f"{vid}-{hashlib.sha256(rel.encode()).hexdigest()[:8]}"
        refs.append(VideoRef(vid, p))
    return refs


def profile_videos(profile) -> list[VideoRef]:
    """The source videos of a profile (kling.config.Profile): its demo corpus or the user's folder."""
    return discover_videos(profile.source_dir(), recursive=profile.section("source").get("recursive", True))
