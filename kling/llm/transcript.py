"""Every turn of every dialogue, kept: what was asked, who answered, how, and with what result."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, Field


class Turn(BaseModel):
    """One exchange: a request and its reply (or its failure)."""

    name: str  # what the call was for ("audio_expert.round1", "caption", "judge")
    speaker: str = "model"  # the expert or role that speaks
    round: int | None = None
    backend: str  # what produced the reply: "offline", "openai", or "measured" (a recorded reading)
    model: str | None = None
    fallback_from: str | None = None  # set when a configured fallback answered: "<backend>: <reason>"
    schema_name: str
    messages: list[dict[str, Any]] = Field(default_factory=list)  # the request (images shortened)
    reply_text: str | None = None
    value: dict[str, Any] | None = None  # the validated reply
    status: str  # "ok" | "failed"
    reason: str | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list)  # each try: status, error, latency
    cached: bool = False
    latency_s: float = 0.0


class Transcript:
    """An append-only list of turns (thread-safe: experts may run concurrently)."""

    def __init__(self) -> None:
        self._turns: list[Turn] = []
        self._lock = threading.Lock()

    def add(self, turn: Turn) -> Turn:
        with self._lock:
            self._turns.append(turn)
        return turn

    @property
    def turns(self) -> list[Turn]:
        with self._lock:
            return list(self._turns)

    def __len__(self) -> int:
        return len(self.turns)

    def to_list(self) -> list[dict[str, Any]]:
        return [t.model_dump(mode="json") for t in self.turns]


def shorten_images(messages: list[dict[str, Any]], keep: int = 48) -> list[dict[str, Any]]:
    """Messages with data URLs cut to their head (a transcript keeps what was sent, not megabytes of base64)."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for p in content:
                url = (p.get("image_url") or {}).get("url") if isinstance(p, dict) else None
                if isinstance(url, str) and url.startswith("data:") and len(url) > keep:
                    p = {**p, "image_url": {**p["image_url"], "url": f"{url[:keep]}...({len(url)} chars)"}}
                parts.append(p)
            m = {**m, "content": parts}
        out.append(m)
    return out
