"""The LLM layer: one OpenAI-compatible client with schemas, retries, a disk cache and transcripts.

Imports only the base layer (io, paths, hashing, atomic). Backends: offline (deterministic experts from
measured signals) and openai (any compatible endpoint); "embedded" was measured and dropped (config.py).
"""

from kling.llm.client import LLMClient, Reply, extract_json
from kling.llm.config import BACKENDS, LLMConfig, llm_config
from kling.llm.errors import LLMError
from kling.llm.transcript import Transcript, Turn

__all__ = ["BACKENDS", "LLMClient", "LLMConfig", "LLMError", "Reply", "Transcript", "Turn", "extract_json",
           "llm_config"]
