"""A vision-language judge behind an OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama all speak it).

One yes/no question per semantic assertion, asked on a few frames sampled from the assertion's span. Requests go
through the project's one LLM client (kling.llm: the `openai` package, retries with backoff, a concurrency limit,
the disk cache of validated replies, a transcript of every turn); the answer is validated as a `YesNo` schema.
Frames go as base64 JPEG data URLs in the OpenAI vision message format. Every failure mode (no endpoint
configured, refused connection, HTTP error, timeout, a body that is not JSON, a reply with no yes/no) gives
``JudgeAnswer(status="unavailable", reason)``; nothing here raises on a bad reply.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel

from kling.llm import LLMClient, LLMConfig, LLMError
from kling.llm.images import jpeg_data_url
from kling.llm.openai_chat import base_url_of

SYSTEM_PROMPT = (
    "You are a strict evaluator of generated videos. You are shown frames sampled in order from a video segment. "
    "Answer the question with a single word: yes or no."
)

QUESTIONS = {
    ("emotion", "happy"): "Does the person look happy?",
    ("emotion", "sad"): "Does the person look sad?",
    ("emotion", "angry"): "Does the person look angry?",
    ("emotion", "surprised"): "Does the person look surprised?",
    ("emotion", "neutral"): "Does the person have a neutral, calm expression?",
    ("emotion", "fearful"): "Does the person look afraid?",
    ("emotion", "disgusted"): "Does the person look disgusted?",
    ("emotion", "smiling"): "Is the person smiling?",
    ("emotion", "laughing"): "Is the person laughing?",
    ("emotion", "frowning"): "Is the person frowning?",
    ("gaze", "camera"): "Is the person looking at the camera?",
    ("gaze", "away"): "Is the person looking away from the camera?",
    ("gaze", "left"): "Is the person looking to the left of the image?",
    ("gaze", "right"): "Is the person looking to the right of the image?",
    ("gaze", "up"): "Is the person looking up?",
    ("gaze", "down"): "Is the person looking down?",
}


def question_for(kind: str, value: str) -> str:
    """The yes/no question for an assertion (generic wording for kinds without a fixed question)."""
    return QUESTIONS.get((kind, value), f"Does the video show: {kind.replace('_', ' ')} = {value.replace('_', ' ')}?")


_YES_NO = re.compile(r"\b(yes|no)\b", re.I)


def parse_yes_no(text: str) -> str | None:
    """The first standalone yes/no in a reply ("Yes.", "**No**, the person...", "Answer: yes"), else None."""
    if not isinstance(text, str):
        return None
    m = _YES_NO.search(text)
    return m.group(1).lower() if m else None


def chat_endpoint(url: str) -> str:
    """Accept a base URL (http://host:8000/v1) or the full chat-completions URL."""
    return base_url_of(url) + "/chat/completions"


class YesNo(BaseModel):
    """The judge's answer to one question."""

    answer: Literal["yes", "no"]


class ReplyText(BaseModel):
    """A free-text reply (the instruction parser validates its JSON list itself)."""

    text: str


def _yes_no(text: str) -> dict:
    answer = parse_yes_no(text)
    if answer is None:
        raise ValueError(f"reply has no yes/no: {text[:80]!r}")
    return {"answer": answer}


@dataclass
class JudgeAnswer:
    status: str  # "yes" | "no" | "unavailable"
    reason: str | None = None
    raw: str | None = None  # the model's reply text (truncated)
    latency_s: float | None = None


class JudgeClient:
    """The judge over kling.llm's client. ``timeout_s`` bounds each request; ``retries`` are transport retries
    (429 / 5xx / connection / timeout) with backoff; a reply with no yes/no is not re-asked."""

    def __init__(self, url: str, model: str, timeout_s: float = 60.0, api_key: str | None = None,
                 max_tokens: int = 8, retries: int = 0, client: LLMClient | None = None):
        if not url or not model:
            raise ValueError("a judge needs both an endpoint URL and a model name")
        self.url = chat_endpoint(url)
        self.model = model
        self.timeout_s = float(timeout_s)
        self.max_tokens = int(max_tokens)
        self.retries = int(retries)
        self.client = client or LLMClient(LLMConfig(
            backend="openai", base_url=base_url_of(url), model=model, api_key=api_key, timeout_s=self.timeout_s,
            max_attempts=self.retries + 1, max_repairs=0, temperature=0.0, max_tokens=self.max_tokens))

    def info(self) -> dict:
        return {"url": self.url, "model": self.model, "timeout_s": self.timeout_s, "max_tokens": self.max_tokens}

    def chat(self, messages: list[dict], max_tokens: int | None = None) -> tuple[str | None, str | None]:
        """(reply text, None) or (None, reason). Never raises for network or protocol problems."""
        try:
            reply = self.client.ask("judge.chat", messages, ReplyText, parse=lambda t: {"text": t},
                                    json_mode=False, sampling={"max_tokens": max_tokens or self.max_tokens})
        except LLMError as exc:
            return None, f"judge {exc.reason}"
        return reply.value.text, None

    def ask(self, question: str, frames: list[np.ndarray], span: tuple[float, float] | None = None) -> JudgeAnswer:
        """Ask one yes/no question about frames (RGB uint8), sent in order as JPEG data URLs."""
        if not frames:
            return JudgeAnswer("unavailable", "no frames to show the judge")
        where = f" from {span[0]:.1f} s to {span[1]:.1f} s of the video" if span else ""
        content = [{"type": "text", "text": f"{len(frames)} frames sampled in order{where}. {question} "
                                            "Answer yes or no."}]
        content += [{"type": "image_url", "image_url": {"url": jpeg_data_url(f)}} for f in frames]
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]
        t0 = time.perf_counter()
        try:
            reply = self.client.ask("judge", messages, YesNo, parse=_yes_no, json_mode=False, speaker="judge")
        except LLMError as exc:
            turn = exc.turn
            raw = turn.reply_text[:200] if turn is not None and turn.reply_text else None
            return JudgeAnswer("unavailable", f"judge {exc.reason}", raw, time.perf_counter() - t0)
        return JudgeAnswer(reply.value.answer, None, (reply.turn.reply_text or "")[:200], time.perf_counter() - t0)


def sample_times(start_s: float, end_s: float, k: int) -> list[float]:
    """Centres of k equal parts of the span (the frames shown to the judge)."""
    if end_s <= start_s:
        return [start_s]
    step = (end_s - start_s) / k
    return [start_s + (i + 0.5) * step for i in range(k)]


PARSE_PROMPT = (
    "Turn the video instruction into a JSON list of checkable assertions. Each item: "
    '{{"kind": K, "value": V, "start_s": number or null, "end_s": number or null, "negated": bool}}. '
    "Allowed kinds and values: {vocab}. people_count values are digits. A null start_s means 0; a null end_s "
    "means the end of the video; negative numbers count back from the end. Reply with the JSON list only.\n\n"
    "Instruction: {text}"
)


def parse_instruction_llm(text: str, client: JudgeClient) -> tuple[list | None, str | None]:
    """Assertions parsed by the language model, validated against the vocabulary; (None, reason) on any problem.

    The first JSON list in the reply is used (models often wrap it in prose or code fences).
    """
    from eval.adherence.assertions import VOCABULARY, assertion_from_dict

    vocab = "; ".join(f"{k}: {', '.join(v[1])}" for k, v in VOCABULARY.items())
    reply, reason = client.chat([{"role": "user", "content": PARSE_PROMPT.format(vocab=vocab, text=text)}],
                                max_tokens=1024)
    if reply is None:
        return None, reason
    start, end = reply.find("["), reply.rfind("]")
    if start < 0 or end <= start:
        return None, f"language model reply has no JSON list: {reply[:80]!r}"
    try:
        items = json.loads(reply[start:end + 1])
        if not isinstance(items, list):
            raise ValueError("not a list")
        return [assertion_from_dict(d, source="llm") for d in items], None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"language model assertions rejected: {exc}"
