"""The `openai` backend: one chat-completions request through the `openai` package, errors sorted into
worth-retrying (TransientError) and not (PermanentError). Retrying and backoff are the client's job, so the
package's own retries are off."""

from __future__ import annotations

from typing import Any

from kling.llm.config import LLMConfig
from kling.llm.errors import PermanentError, TransientError


def content_text(content: Any) -> str | None:
    """message.content as text: a string, or the text parts of a list (some servers return parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(parts) if parts else None
    return None


def base_url_of(url: str) -> str:
    """Accept a base URL (http://host:8000/v1) or the full chat-completions URL."""
    url = url.rstrip("/")
    return url[: -len("/chat/completions")] if url.endswith("/chat/completions") else url


class OpenAIChat:
    def __init__(self, config: LLMConfig):
        import openai

        if not config.base_url or not config.model:
            raise ValueError("the openai backend needs a base URL (llm.base_url or OPENAI_BASE_URL) and a model "
                             "(llm.model, OPENAI_MODEL or --model)")
        self._openai = openai
        self.config = config
        self.base_url = base_url_of(config.base_url)
        # api_key: local servers need none, but the package insists on a value
        self.client = openai.OpenAI(base_url=self.base_url, api_key=config.api_key or "none",
                                    timeout=config.timeout_s, max_retries=0)

    def complete(self, messages: list[dict], sampling: dict[str, Any], json_schema: dict | None = None,
                 schema_name: str = "reply") -> str:
        """The reply text of one request; raises TransientError or PermanentError."""
        oa = self._openai
        extra: dict[str, Any] = {}
        if json_schema is not None:
            # servers that support it (vLLM, llama.cpp, hosted APIs) constrain decoding to the schema
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": schema_name[:64], "schema": json_schema}}
        try:
            resp = self.client.chat.completions.create(model=self.config.model, messages=messages, stream=False,
                                                       **sampling, **extra)
        except oa.APITimeoutError:
            raise TransientError(f"timed out after {self.config.timeout_s:g} s") from None
        except oa.APIConnectionError as exc:
            raise TransientError(f"endpoint unreachable ({self.base_url}): {exc}") from None
        except oa.APIStatusError as exc:
            detail = _body_text(exc)
            reason = f"HTTP {exc.status_code}: {detail}"
            if exc.status_code == 429 or exc.status_code >= 500:
                raise TransientError(reason, _retry_after(exc)) from None
            raise PermanentError(reason) from None
        except oa.APIResponseValidationError as exc:
            raise PermanentError(f"reply is not a chat completion: {exc}") from None
        except ValueError as exc:  # a 200 whose body is not JSON
            raise PermanentError(f"reply is not JSON: {exc}") from None
        return _reply_text(resp)


def _reply_text(resp: Any) -> str:
    if isinstance(resp, (str, bytes)):
        raise PermanentError(f"reply is not JSON: {str(resp)[:120]!r}")
    choices = getattr(resp, "choices", None)
    if not choices:
        extra = getattr(resp, "model_extra", None) or {}
        err = extra.get("error")
        raise PermanentError(f"reply has no choices[0].message.content{f': {err}' if err else ''}")
    message = getattr(choices[0], "message", None)
    text = content_text(getattr(message, "content", None))
    if text is None:
        raise PermanentError("reply content is empty or not text")
    return text


def _body_text(exc) -> str:
    try:
        return exc.response.text.strip()[:200]
    except Exception:  # noqa: BLE001 - the reason is best effort
        return str(exc)[:200]


def _retry_after(exc) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
