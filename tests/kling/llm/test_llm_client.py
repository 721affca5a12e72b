"""The LLM client against a local OpenAI-compatible server: valid, malformed, schema-violating, slow, 500 and
429 replies; retries, repairs, the cache, the transcript, fallback labelling, the concurrency limit."""

from __future__ import annotations

import json
import threading
import time
from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from kling.llm import LLMClient, LLMConfig, LLMError, Transcript, extract_json, llm_config
from kling.llm.images import user_message
from kling.paths import Layout
from tests.support.chat_server import ChatServer


class Mood(BaseModel):
    emotion: Literal["happy", "sad", "neutral"]
    intensity: float = Field(ge=0, le=1)


VALID = json.dumps({"emotion": "happy", "intensity": 0.7})


@pytest.fixture(scope="module")
def server():
    with ChatServer() as srv:
        yield srv


def client(url, **kw) -> LLMClient:
    cfg = dict(backend="openai", base_url=url, model="scripted", timeout_s=5, backoff_s=0.01, max_backoff_s=0.05)
    cfg.update(kw)
    return LLMClient(LLMConfig(**cfg))


def ask(c, text="How does she feel?"):
    return c.ask("mood", [{"role": "user", "content": text}], Mood)


def test_valid_reply_request_format_and_transcript(server):
    url = server.script("valid", {"text": "Sure:\n```json\n" + VALID + "\n```"})
    c = client(url, seed=7, temperature=0.2)
    frame = np.full((32, 48, 3), 200, np.uint8)
    reply = c.ask("mood", [user_message("How does she feel?", [frame])], Mood, speaker="visual", round=1)
    assert reply.value == Mood(emotion="happy", intensity=0.7)
    route, body = server.requests[-1]
    assert route == "valid" and body["model"] == "scripted" and body["seed"] == 7 and body["temperature"] == 0.2
    assert body["response_format"]["type"] == "json_schema"
    assert "Mood" in body["response_format"]["json_schema"]["name"]
    assert body["messages"][0]["role"] == "system" and '"emotion"' in body["messages"][0]["content"]
    img = body["messages"][1]["content"][1]["image_url"]["url"]
    assert img.startswith("data:image/jpeg;base64,")
    (turn,) = c.transcript.turns
    assert turn.status == "ok" and turn.speaker == "visual" and turn.round == 1 and turn.backend == "openai"
    assert turn.value == {"emotion": "happy", "intensity": 0.7} and not turn.cached
    assert "chars)" in turn.messages[0]["content"][1]["image_url"]["url"]  # the transcript shortens images


def test_malformed_then_valid_is_repaired_with_the_error_fed_back(server):
    url = server.script("malformed", {"text": "I think she is happy!"}, {"text": VALID})
    reply = ask(client(url, max_repairs=2))
    assert reply.value.emotion == "happy"
    _, body = server.requests[-1]
    assert body["messages"][-2] == {"role": "assistant", "content": "I think she is happy!"}
    assert "not JSON" in body["messages"][-1]["content"]
    assert [a["status"] for a in reply.turn.attempts] == ["ok", "invalid", "ok"]


def test_schema_violation_fails_after_bounded_repairs(server):
    bad = json.dumps({"emotion": "ecstatic", "intensity": 3})
    url = server.script("violating", {"text": bad})
    c = client(url, max_repairs=1)
    with pytest.raises(LLMError) as err:
        ask(c)
    assert "Mood reply invalid after 2 tries" in err.value.reason and "emotion" in err.value.reason
    assert server.count("violating") == 2
    _, body = server.requests[-1]
    assert "intensity" in body["messages"][-1]["content"]  # the validation error was fed back
    assert c.transcript.turns[-1].status == "failed" and c.transcript.turns[-1].reason == err.value.reason


def test_slow_server_times_out_with_bounded_retries(server):
    url = server.script("slow", {"sleep": 1.0, "text": VALID})
    t0 = time.perf_counter()
    with pytest.raises(LLMError) as err:
        ask(client(url, timeout_s=0.2, max_attempts=2))
    assert "timed out after 0.2 s" in err.value.reason and "after 2 tries" in err.value.reason
    assert time.perf_counter() - t0 < 3


def test_http_500_retried_then_fails_with_status(server):
    url = server.script("err500", {"status": 500, "body": "model crashed"})
    with pytest.raises(LLMError) as err:
        ask(client(url, max_attempts=3))
    assert "HTTP 500: model crashed" in err.value.reason
    assert server.count("err500") == 3


def test_429_then_success_backs_off(server):
    url = server.script("rate", {"status": 429, "body": '{"error": "slow down"}', "retry_after": 0},
                        {"status": 503, "body": "warming up"}, {"text": VALID})
    waits = []
    c = LLMClient(LLMConfig(backend="openai", base_url=url, model="scripted", backoff_s=0.01, max_attempts=4),
                  sleep=waits.append)
    assert ask(c).value.emotion == "happy"
    assert waits == [0.01, 0.02]  # exponential backoff, bounded
    assert [a["status"] for a in c.transcript.turns[0].attempts] == ["retry", "retry", "ok"]


def test_client_errors_are_not_retried(server):
    url = server.script("e400", {"status": 400, "body": "bad request"})
    with pytest.raises(LLMError, match="HTTP 400"):
        ask(client(url, max_attempts=4))
    assert server.count("e400") == 1


def test_non_json_body_and_missing_choices(server):
    with pytest.raises(LLMError, match="not JSON|not a chat completion"):
        ask(client(server.script("junk", {"raw": "<html>502 Bad Gateway</html>"})))
    with pytest.raises(LLMError, match="no choices"):
        ask(client(server.script("nochoices", {"raw": json.dumps({"error": "overloaded"})})))


def test_cache_hit_on_rerun_and_failure_not_cached(server):
    url = server.script("cached", {"text": VALID})
    first = ask(client(url))
    again = ask(client(url))
    assert server.count("cached") == 1 and again.turn.cached and again.value == first.value
    assert list(Layout.default().llm_cache.rglob("*.json"))
    # a different seed is a different request
    ask(client(url, seed=1))
    assert server.count("cached") == 2
    # failures are never cached: the next run asks again and can succeed
    url = server.script("flaky", {"status": 500, "body": "down"}, {"text": VALID})
    with pytest.raises(LLMError):
        ask(client(url, max_attempts=1))
    assert ask(client(url, max_attempts=1)).value.emotion == "happy"
    assert server.count("flaky") == 2


def test_unreachable_endpoint_fails_or_falls_back_labelled():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(LLMError, match="unreachable"):
        ask(client(url, max_attempts=1))
    c = client(url, max_attempts=1, fallback="offline")
    reply = c.ask("mood", [{"role": "user", "content": "x"}], Mood,
                  offline=lambda: {"emotion": "neutral", "intensity": 0.1})
    assert reply.value.emotion == "neutral"
    assert reply.turn.backend == "offline" and reply.turn.fallback_from.startswith("openai: endpoint unreachable")
    assert [t.status for t in c.transcript.turns] == ["failed", "ok"]
    assert c.label == "openai:scripted (fallback: offline)"


def test_offline_backend_validates_the_expert():
    c = LLMClient(LLMConfig())
    assert c.ask("mood", [], Mood, offline=lambda: Mood(emotion="sad", intensity=0.2)).value.emotion == "sad"
    with pytest.raises(LLMError, match="broke its schema"):
        c.ask("mood", [], Mood, offline=lambda: {"emotion": "sad", "intensity": 9})
    with pytest.raises(LLMError, match="no expert"):
        c.ask("mood", [], Mood)


def test_concurrency_limit(server):
    url = server.script("conc", {"sleep": 0.3, "text": VALID})
    c = client(url, concurrency=2, cache=False)
    active, peak, lock = [0], [0], threading.Lock()
    engine = c._backend("openai")
    real = engine.complete

    def counted(*a, **k):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return real(*a, **k)
        finally:
            with lock:
                active[0] -= 1

    engine.complete = counted
    threads = [threading.Thread(target=ask, args=(c, f"q{i}")) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2 and len(c.transcript) == 5


def test_config_from_profile_section_and_environment():
    cfg = llm_config({"backend": "openai", "model": "m1"}, env={"OPENAI_BASE_URL": "http://h:1/v1",
                                                                 "OPENAI_API_KEY": "sk-x"})
    assert cfg.base_url == "http://h:1/v1" and cfg.api_key == "sk-x" and cfg.model == "m1"
    assert "api_key" not in cfg.public() and "sk-x" not in repr(cfg)
    assert llm_config({}, env={}).backend == "offline"
    with pytest.raises(ValueError, match="unknown llm backend"):
        llm_config({"backend": "gpt"}, env={})
    with pytest.raises(ValueError, match="unknown llm settings"):
        llm_config({"temprature": 1}, env={})
    with pytest.raises(LLMError, match="needs a base URL"):
        ask(LLMClient(LLMConfig(backend="openai", model="m")))


def test_extract_json():
    assert extract_json('noise {"a": 1} tail') == {"a": 1}
    assert extract_json("```json\n{\"a\": 2}\n```") == {"a": 2}
    with pytest.raises(ValueError, match="not JSON"):
        extract_json("no braces")


def test_transcript_is_shared_across_clients():
    tr = Transcript()
    LLMClient(LLMConfig(), transcript=tr).ask("a", [], Mood, offline=lambda: {"emotion": "sad", "intensity": 0})
    LLMClient(LLMConfig(), transcript=tr).ask("b", [], Mood, offline=lambda: {"emotion": "sad", "intensity": 0})
    assert [t["name"] for t in tr.to_list()] == ["a", "b"]


def test_embedded_backend_is_refused_with_the_measured_reason():
    with pytest.raises(ValueError, match="measured and dropped"):
        llm_config({"backend": "embedded"}, env={})
