"""Profiles: the same code serves the offline demo and the paper setting; only this data differs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from kling.clock import FPS, SAMPLE_RATE
from kling.hashing import config_hash
from kling.paths import Layout

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
# Profile keys that would set the media clock (kling.clock). They are not settings: curation normalises to this
# clock and every later step and metric protocol assumes it, so another value would change every number
# silently. A profile may repeat the clock's value (older copies did) but not change it.
CLOCK_KEYS = {
    ("normalise", "fps"): (FPS, "fps"),
    ("normalise", "sample_rate"): (SAMPLE_RATE, "Hz"),
    ("faces", "fps"): (FPS, "fps"),
    ("quality", "fps"): (FPS, "fps"),
}


class ProfileError(ValueError):
    """A profile that cannot be used as written (the message names the file, the key and why)."""


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
    check_clock(raw, path)
    return Profile(name=str(raw.get("profile", path.stem)), raw=raw, origin=path)


def check_clock(raw: dict[str, Any], origin: Path | str = "<profile>") -> None:
    """Raise ProfileError when a profile sets a clock key (CLOCK_KEYS) to anything but the clock's value."""
    for (section, key), (value, unit) in CLOCK_KEYS.items():
        block = raw.get(section)
        if not isinstance(block, dict) or key not in block:
            continue
        given = block[key]
        if type(given) in (int, float) and given == value:  # bool is no number here (True == 1)
            continue
        raise ProfileError(
            f"{origin}: {section}.{key} is {given!r}, but the media clock is fixed at {value} {unit} (kling.clock): "
            f"curation normalises every clip to it and every later step and metric protocol (SyncNet's Sync-C/D, "
            f"CSIM, FID/FVD, drift) reads that timeline, so another value would change every number silently. "
            f"Remove the key.")


def compute_device() -> str:
    """Where the avatar model and its VAE and encoders run: $KLING_DEVICE (cuda, cuda:1, ...), else cpu. The machine's
    choice, like the thread count: never part of a recipe or a configuration. The CPU is the reproducible one (the
    demo's baseline); another device gives other floats."""
    return os.environ.get("KLING_DEVICE") or "cpu"
