"""KlingAvatar 2.0 reproduction: curation, cascade and evaluation library (no Dagster imports here)."""

__version__ = "0.1.0"
