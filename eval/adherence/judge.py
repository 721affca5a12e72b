"""A vision-language judge behind an OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama all speak it).

One yes/no question per semantic assertion, asked on a few frames sampled from the assertion's span. Frames go
as base64 JPEG data URLs in the OpenAI vision message format (``{"type": "image_url", "image_url": {"url":
"data:image/jpeg;base64,..."}}``). Every failure mode — no endpoint configured, refused connection, HTTP error,
timeout, a body that is not JSON, a reply with no yes/no — gives ``JudgeAnswer(status="unavailable", reason)``;
nothing here raises on a bad reply. Standard library only (urllib), so it needs no extra dependency.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import cv2
import numpy as np

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


@dataclass
class JudgeAnswer:
    status: str  # "yes" | "no" | "unavailable"
    reason: str | None = None
    raw: str | None = None  # the model's reply text (truncated)
    latency_s: float | None = None


def jpeg_data_url(frame: np.ndarray, max_side: int = 512, quality: int = 85) -> str:
    """RGB uint8 frame -> data:image/jpeg;base64 URL, downscaled so its long side is at most max_side."""
    h, w = frame.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        frame = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


_YES_NO = re.compile(r"\b(yes|no)\b", re.I)


def parse_yes_no(text: str) -> str | None:
    """The first standalone yes/no in a reply ("Yes.", "**No**, the person...", "Answer: yes"), else None."""
    if not isinstance(text, str):
        return None
    m = _YES_NO.search(text)
    return m.group(1).lower() if m else None


def _content_text(content) -> str | None:
    """message.content as text: a string, or the text parts of a list (some servers return parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(parts) if parts else None
    return None


def chat_endpoint(url: str) -> str:
    """Accept a base URL (http://host:8000/v1) or the full chat-completions URL."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


class JudgeClient:
    """Minimal OpenAI-compatible chat client. ``timeout_s`` bounds each request (connect and every read)."""

    def __init__(self, url: str, model: str, timeout_s: float = 60.0, api_key: str | None = None,
                 max_tokens: int = 8, retries: int = 0):
        if not url or not model:
            raise ValueError("a judge needs both an endpoint URL and a model name")
        self.url = chat_endpoint(url)
        self.model = model
        self.timeout_s = float(timeout_s)
        self.api_key = api_key
        self.max_tokens = int(max_tokens)
        self.retries = int(retries)

    def info(self) -> dict:
        return {"url": self.url, "model": self.model, "timeout_s": self.timeout_s, "max_tokens": self.max_tokens}

    def chat(self, messages: list[dict], max_tokens: int | None = None) -> tuple[str | None, str | None]:
        """(reply text, None) or (None, reason). Never raises for network or protocol problems."""
        body = json.dumps({
            "model": self.model, "messages": messages, "temperature": 0,
            "max_tokens": max_tokens or self.max_tokens, "stream": False,
        }).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        reason = None
        for _ in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - user-configured URL
                    raw = resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
                reason = f"judge HTTP {exc.code}: {detail.strip()[:200]}"
                continue
            except (socket.timeout, TimeoutError):
                reason = f"judge timed out after {self.timeout_s:g} s"
                continue
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                    reason = f"judge timed out after {self.timeout_s:g} s"
                else:
                    reason = f"judge unreachable: {exc.reason}"
                continue
            except (OSError, ValueError) as exc:  # reset connections, bad URLs, broken HTTP
                reason = f"judge request failed: {type(exc).__name__}: {exc}"
                continue
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                return None, f"judge reply is not JSON: {raw[:120]!r}"
            try:
                text = _content_text(data["choices"][0]["message"]["content"])
            except (KeyError, IndexError, TypeError):
                err = data.get("error") if isinstance(data, dict) else None
                return None, f"judge reply has no choices[0].message.content{f': {err}' if err else ''}"
            if text is None:
                return None, "judge reply content is empty or not text"
            return text, None
        return None, reason

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
        text, reason = self.chat(messages)
        dt = time.perf_counter() - t0
        if text is None:
            return JudgeAnswer("unavailable", reason, None, dt)
        answer = parse_yes_no(text)
        if answer is None:
            return JudgeAnswer("unavailable", f"judge reply has no yes/no: {text[:80]!r}", text[:200], dt)
        return JudgeAnswer(answer, None, text[:200], dt)


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
