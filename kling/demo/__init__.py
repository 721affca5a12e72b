"""Offline demo corpus: synthetic talking-head clips (procedural face + speech-like audio) with ground truth.

Independent of the pipeline: it only writes files and a manifest (corpus.json). Users replace the demo
corpus with their own videos by configuration; nothing downstream imports this package.
"""

from kling.demo.corpus import (
    AV_OFFSET_CONVENTION,
    GENERATOR_VERSION,
    ClipRecord,
    CorpusManifest,
    generate_corpus,
    load_recipe,
    recipe_hash,
)

__all__ = [
    "AV_OFFSET_CONVENTION",
    "GENERATOR_VERSION",
    "ClipRecord",
    "CorpusManifest",
    "generate_corpus",
    "load_recipe",
    "recipe_hash",
]
