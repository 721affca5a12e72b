"""Feature cache keyed by content: a file's sha256, the frame set taken from it, the backbone file's sha256
and the extraction protocol. A re-run, or a second system scored against the same reference set, reads
what is already there and computes nothing twice; renaming or moving a file does not invalidate it,
changing a byte does. Shared by FID (Inception pool3) and FVD (I3D logits).

Layout: ``<root>/<kind>/<key[:2]>/<key>.npz`` with arrays ``features`` (n, d) float32 and ``index`` (n,)
int64 (frame or clip-start index on the protocol timeline; 0 for a still image) and ``n_frames`` (the
video's length on that timeline, so windows can be cut without decoding again). Writes are atomic.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kling.atomic import atomic_write_bytes
from kling.hashing import config_hash
from kling.paths import feature_cache_dir

log = logging.getLogger(__name__)


def default_root() -> Path:
    return feature_cache_dir()


def content_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (memoised on path, size and mtime)."""
    from kling.weights import sha256_of

    return sha256_of(path)


@dataclass
class FeatureCache:
    root: Path | None = None
    enabled: bool = True
    hits: int = 0
    misses: int = 0

    def __post_init__(self) -> None:
        self.root = Path(self.root) if self.root is not None else default_root()

    def key(self, kind: str, content: str, spec: dict) -> str:
        return config_hash({"kind": kind, "content": content, "spec": spec})

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.npz"

    def get(self, kind: str, key: str) -> tuple[np.ndarray, np.ndarray, int] | None:
        """(features, index, n_frames) or None."""
        if not self.enabled:
            return None
        p = self._path(kind, key)
        if not p.exists():
            self.misses += 1
            return None
        try:
            with np.load(p) as z:
                out = z["features"], z["index"], int(z["n_frames"])
        except (OSError, ValueError, KeyError) as exc:  # a damaged entry is recomputed, not trusted
            log.warning("feature cache entry %s unreadable (%s); recomputing", p, exc)
            self.misses += 1
            return None
        self.hits += 1
        return out

    def put(self, kind: str, key: str, features: np.ndarray, index: np.ndarray, n_frames: int = 1) -> None:
        if not self.enabled:
            return
        buf = io.BytesIO()
        np.savez(buf, features=np.asarray(features, np.float32), index=np.asarray(index, np.int64),
                 n_frames=np.int64(n_frames))
        atomic_write_bytes(self._path(kind, key), buf.getvalue())
