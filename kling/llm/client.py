"""One client for every structured question the project asks a language model.

``LLMClient.ask(name, messages, schema, offline=...)`` returns a validated pydantic value and keeps the
turn in the client's transcript. The backend comes from the config:

- ``openai``: the request goes to an OpenAI-compatible endpoint; transport failures (429, 5xx, connection,
  timeout) are retried up to ``max_attempts`` with exponential backoff (Retry-After honoured); a reply that
  is not JSON or breaks the schema is re-asked up to ``max_repairs`` times with the validation error fed
  back; then the call fails with the reason.
- ``offline``: the caller's deterministic expert (``offline``, computed from measured signals) answers;
  its value is validated like any reply.

A fallback backend answers only when ``config.fallback`` names one; its turns say so (``fallback_from``).
Validated replies are cached on disk (kling.llm.cache); failures never are.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, Callable, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from kling.llm.cache import ReplyCache, cache_key
from kling.llm.config import LLMConfig
from kling.llm.errors import LLMError, PermanentError, TransientError
from kling.llm.transcript import Transcript, Turn, shorten_images

T = TypeVar("T", bound=BaseModel)

SCHEMA_INSTRUCTION = ("Reply with one JSON object, and nothing else, that validates against this JSON schema:\n"
                      "{schema}")
REPAIR_INSTRUCTION = ("Your reply could not be used: {error}\nReply again with only the JSON object that "
                      "validates against the schema.")


class Reply(Generic[T]):
    def __init__(self, value: T, turn: Turn):
        self.value = value
        self.turn = turn


def extract_json(text: str) -> Any:
    """The JSON value of a reply: the whole text, else the outermost {...} (models wrap JSON in prose or fences)."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError(f"reply is not JSON: {text[:120]!r}")
    try:
        return json.loads(text[start:end + 1])
    except ValueError as exc:
        raise ValueError(f"reply is not JSON ({exc}): {text[:120]!r}") from None


def _short_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors()[:5]
        return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or '(root)'}: {e['msg']}" for e in errs)
    return str(exc)[:300]


class LLMClient:
    def __init__(self, config: LLMConfig | None = None, transcript: Transcript | None = None,
                 cache: ReplyCache | None = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config or LLMConfig()
        self.transcript = transcript if transcript is not None else Transcript()
        self._cache = cache
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max(1, int(self.config.concurrency)))
        self._backends: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- public -----------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The backend as outputs record it: "offline" or "openai:<model>", plus the fallback."""
        c = self.config
        main = c.backend if c.backend == "offline" else f"{c.backend}:{c.model or 'default'}"
        return main + (f" (fallback: {c.fallback})" if c.fallback else "")

    def ask(self, name: str, messages: list[dict], schema: type[T], *,
            offline: Callable[[], Any] | None = None, parse: Callable[[str], Any] | None = None,
            speaker: str = "model", round: int | None = None, sampling: dict[str, Any] | None = None,
            json_mode: bool = True) -> Reply[T]:
        """A validated ``schema`` value for this request; raises LLMError (with the failed turn) when none.

        ``parse`` turns reply text into the value to validate (default: the JSON in the text); with
        ``json_mode`` the schema is stated in the request and sent as response_format.
        """
        try:
            return self._ask(self.config.backend, None, name, messages, schema, offline, parse, speaker, round,
                             sampling, json_mode)
        except LLMError as exc:
            fb = self.config.fallback
            if not fb:
                raise
            origin = f"{self.config.backend}: {exc.reason}"
            return self._ask(fb, origin, name, messages, schema, offline, parse, speaker, round, sampling, json_mode)

    def record(self, name: str, value: BaseModel, *, speaker: str, round: int | None = None,
               source: str = "measured") -> Turn:
        """Keep a statement that no model produced (a measured expert reading) as a turn of the dialogue."""
        turn = Turn(name=name, speaker=speaker, round=round, backend=source, schema_name=type(value).__name__,
                    status="ok", value=value.model_dump(mode="json"))
        return self.transcript.add(turn)

    # -- one backend ------------------------------------------------------------------------------------
    def _ask(self, backend, fallback_from, name, messages, schema, offline, parse, speaker, round, sampling,
             json_mode) -> Reply:
        c = self.config
        model = None if backend == "offline" else c.model
        turn = Turn(name=name, speaker=speaker, round=round, backend=backend, model=model,
                    fallback_from=fallback_from, schema_name=schema.__name__, messages=shorten_images(messages),
                    status="failed")
        t0 = time.perf_counter()
        try:
            if backend == "offline":
                value = self._offline(offline, schema, turn)
            else:
                value = self._chat(backend, name, messages, schema, parse, sampling, json_mode, turn)
        except LLMError as exc:
            turn.reason, turn.latency_s = exc.reason, time.perf_counter() - t0
            self.transcript.add(turn)
            raise LLMError(exc.reason, turn) from None
        turn.status, turn.value, turn.latency_s = "ok", value.model_dump(mode="json"), time.perf_counter() - t0
        self.transcript.add(turn)
        return Reply(value, turn)

    def _offline(self, offline, schema, turn: Turn) -> BaseModel:
        if offline is None:
            raise LLMError(f"the offline backend has no expert for {turn.name!r}")
        raw = offline()
        try:
            value = schema.model_validate(raw.model_dump() if isinstance(raw, BaseModel) else raw)
        except ValidationError as exc:  # a bug in an expert: said plainly, never passed on
            raise LLMError(f"offline expert {turn.name!r} broke its schema {schema.__name__}: "
                           f"{_short_error(exc)}") from None
        turn.reply_text = json.dumps(value.model_dump(mode="json"), ensure_ascii=False)
        return value

    def _sampling(self, sampling):
        c = self.config
        return {"temperature": c.temperature, "max_tokens": c.max_tokens, "seed": c.seed, **(sampling or {})}

    def _chat(self, backend, name, messages, schema, parse, sampling, json_mode, turn: Turn) -> BaseModel:
        c = self.config
        sampling = self._sampling(sampling)
        json_schema = schema.model_json_schema()
        msgs = list(messages)
        if json_mode:
            msgs = [{"role": "system", "content": SCHEMA_INSTRUCTION.format(schema=json.dumps(json_schema))}] + msgs
        engine = self._backend(backend)
        where = c.base_url if backend == "openai" else None
        key = cache_key(backend if where is None else f"{backend}@{where}", turn.model, msgs,
                        json_schema, sampling)
        cache = self._reply_cache() if c.cache else None
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                try:
                    value = schema.model_validate(hit["value"])
                    turn.cached, turn.reply_text = True, hit.get("reply_text")
                    return value
                except (ValidationError, KeyError, TypeError):
                    pass  # an entry from an older schema: ask again
        last_error = None
        for repair in range(max(0, int(c.max_repairs)) + 1):
            text = self._with_retries(engine, msgs, sampling, json_schema if json_mode else None, schema, turn)
            turn.reply_text = text
            try:
                value = schema.model_validate(parse(text) if parse else extract_json(text))
            except (ValueError, ValidationError) as exc:  # ValidationError is a ValueError too
                last_error = _short_error(exc)
                turn.attempts.append({"status": "invalid", "error": last_error, "repair": repair})
                msgs = msgs + [{"role": "assistant", "content": text},
                               {"role": "user", "content": REPAIR_INSTRUCTION.format(error=last_error)}]
                continue
            if cache is not None:
                cache.put(key, {"value": value.model_dump(mode="json"), "reply_text": text, "name": name,
                                "backend": backend, "model": turn.model, "schema": schema.__name__})
            return value
        raise LLMError(f"{schema.__name__} reply invalid after {int(c.max_repairs) + 1} tries: {last_error}")

    def _with_retries(self, engine, msgs, sampling, json_schema, schema, turn: Turn) -> str:
        c = self.config
        attempts = max(1, int(c.max_attempts))
        reason = None
        for i in range(attempts):
            t0 = time.perf_counter()
            try:
                with self._slots:  # the concurrency limit holds for the request, not the backoff
                    text = engine.complete(msgs, sampling, json_schema, schema.__name__)
            except TransientError as exc:
                reason = exc.reason
                turn.attempts.append({"status": "retry" if i + 1 < attempts else "error", "error": reason,
                                      "latency_s": round(time.perf_counter() - t0, 4)})
                if i + 1 < attempts:
                    wait = min(c.max_backoff_s, c.backoff_s * (2 ** i))
                    if exc.retry_after_s is not None:
                        wait = min(c.max_backoff_s, max(wait, exc.retry_after_s))
                    self._sleep(wait)
                continue
            except PermanentError as exc:
                turn.attempts.append({"status": "error", "error": exc.reason,
                                      "latency_s": round(time.perf_counter() - t0, 4)})
                raise LLMError(exc.reason) from None
            turn.attempts.append({"status": "ok", "latency_s": round(time.perf_counter() - t0, 4)})
            return text
        raise LLMError(f"{reason} (after {attempts} tries)" if attempts > 1 else reason)

    # -- engines ----------------------------------------------------------------------------------------
    def _backend(self, backend: str):
        with self._lock:
            if backend not in self._backends:
                try:
                    if backend == "openai":
                        from kling.llm.openai_chat import OpenAIChat

                        self._backends[backend] = OpenAIChat(self.config)
                    else:
                        raise ValueError(f"no chat engine for backend {backend!r}")
                except (ValueError, ImportError, OSError) as exc:
                    raise LLMError(f"backend {backend} unavailable: {exc}") from None
            return self._backends[backend]

    def _reply_cache(self) -> ReplyCache:
        if self._cache is None:
            self._cache = ReplyCache()
        return self._cache
