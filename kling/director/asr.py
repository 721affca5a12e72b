"""A transcript from an endpoint speaking the OpenAI audio transcription protocol (Whisper servers, hosted
APIs), through the `openai` package. Used only when configured (llm.asr_url / KLING_ASR_URL)."""

from __future__ import annotations

from pathlib import Path


class Transcriber:
    def __init__(self, url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0):
        import openai

        self.model = model
        self.client = openai.OpenAI(base_url=url.rstrip("/"), api_key=api_key or "none", timeout=timeout_s,
                                    max_retries=1)

    def __call__(self, path: str | Path) -> str:
        with open(path, "rb") as fh:
            result = self.client.audio.transcriptions.create(model=self.model, file=fh)
        text = getattr(result, "text", result)
        return str(text).strip()
