"""The co-reasoning director and the Negative Director: experts, dialogue, storyline (above kling.llm)."""

from kling.director.director import DirectorConfig, DirectorError, DirectorResult, direct
from kling.director.schema import Shot, Storyline

__all__ = ["DirectorConfig", "DirectorError", "DirectorResult", "Shot", "Storyline", "direct"]
