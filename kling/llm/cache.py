"""A disk cache of validated replies: a rerun with the same request is identical and costs nothing.

Keyed by (backend, model, messages, schema, sampling parameters, seed). Only successes are stored; a
failure is never cached, so the next run asks again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kling.atomic import atomic_write_json
from kling.hashing import config_hash
from kling.paths import Layout


def cache_key(backend: str, model: str | None, messages: list[dict], schema: dict, sampling: dict) -> str:
    return config_hash({"backend": backend, "model": model, "messages": messages, "schema": schema,
                        "sampling": sampling})


class ReplyCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else Layout.default().llm_cache

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            return None  # a damaged entry is a miss; the good reply overwrites it

    def put(self, key: str, entry: dict[str, Any]) -> None:
        atomic_write_json(self.path(key), entry)
