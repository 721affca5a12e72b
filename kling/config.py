"""Profiles: the same code serves the offline demo and the paper setting; only this data differs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from kling.hashing import config_hash
from kling.paths import Layout

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    raw: dict[str, Any]
    origin: Path

    def section(self, key: str) -> dict[str, Any]:
        return dict(self.raw.get(key) or {})

    @property
    def hash(self) -> str:
        return config_hash(self.raw)

    @property
    def uses_demo_corpus(self) -> bool:
        """True when the source is the generated demo corpus (the one place this is decided)."""
        return self.section("source").get("kind", "demo_corpus") == "demo_corpus"

    def source_dir(self) -> Path:
        """Folder of raw videos: the generated demo corpus, or the user's folder."""
        src = self.section("source")
        if self.uses_demo_corpus:
            return Layout.default().demo_corpus
        if not src.get("path"):
            raise ValueError(f"profile {self.name} ({self.origin}): source.kind is folder but source.path is not set")
        return Path(src["path"]).expanduser()


def load_profile(name_or_path: str | os.PathLike | None = None) -> Profile:
    """A profile by name (kling/profiles/<name>.yaml) or path; default $KLING_PROFILE, else demo."""
    ref = str(name_or_path or os.environ.get("KLING_PROFILE") or "demo")
    path = Path(ref).expanduser()
    if not path.suffix:
        path = PROFILES_DIR / f"{ref}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(PROFILES_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no profile {ref!r} (known: {known}; or give a path to a YAML file)")
    raw = yaml.safe_load(path.read_text()) or {}
    return Profile(name=str(raw.get("profile", path.stem)), raw=raw, origin=path)
