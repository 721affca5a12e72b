"""The VLM judge client against a local OpenAI-compatible HTTP server started here: good, malformed and slow
replies. Bad replies give `unavailable` with the reason, never an exception."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from eval.adherence.judge import JudgeClient, chat_endpoint, parse_instruction_llm, parse_yes_no

REQUESTS: list[dict] = []


def _reply(text):
    return json.dumps({"id": "x", "object": "chat.completion",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}]}).encode()


class Handler(BaseHTTPRequestHandler):
    """Behaviour chosen by the first path segment: /yes, /no, /junk, /nochoices, /maybe, /slow, /http500, /llm."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        REQUESTS.append({"path": self.path, "body": body})
        mode = self.path.strip("/").split("/")[0]
        if mode == "http500":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model crashed")
            return
        if mode == "slow":
            time.sleep(1.5)
        data = {
            "yes": _reply("Yes."), "no": _reply("**No**, the person is frowning."), "slow": _reply("yes"),
            "junk": b"<html>502 Bad Gateway</html>", "nochoices": json.dumps({"error": "overloaded"}).encode(),
            "maybe": _reply("It is hard to say."),
            "parts": json.dumps({"choices": [{"message": {"content": [{"type": "text", "text": "no"}]}}]}).encode(),
            "llm": _reply('Sure! ```json\n[{"kind": "head_motion", "value": "nod", "start_s": 0, "end_s": 4}, '
                          '{"kind": "emotion", "value": "happy", "start_s": null, "end_s": null}]\n```'),
            "llmbad": _reply('[{"kind": "dance", "value": "tango"}]'),
        }.get(mode, _reply("yes"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _frames(n=2):
    return [np.full((64, 80, 3), (40 * i, 120, 200), np.uint8) for i in range(n)]


def test_yes_and_no_and_the_request_format(server):
    REQUESTS.clear()
    ans = JudgeClient(f"{server}/yes/v1", "qwen2-vl", timeout_s=5).ask("Is the person smiling?", _frames(3), (1, 4))
    assert ans.status == "yes" and ans.reason is None
    req = REQUESTS[-1]
    assert req["path"] == "/yes/v1/chat/completions"
    body = req["body"]
    assert body["model"] == "qwen2-vl" and body["temperature"] == 0
    user = body["messages"][-1]["content"]
    assert user[0]["type"] == "text" and "Is the person smiling?" in user[0]["text"]
    images = [p for p in user if p["type"] == "image_url"]
    assert len(images) == 3
    url = images[0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (64, 80, 3)
    assert JudgeClient(f"{server}/no/v1", "m", timeout_s=5).ask("q", _frames()).status == "no"
    assert JudgeClient(f"{server}/parts/v1", "m", timeout_s=5).ask("q", _frames()).status == "no"


@pytest.mark.parametrize("mode, timeout, reason", [
    ("junk", 5, "not JSON"),
    ("nochoices", 5, "no choices"),
    ("maybe", 5, "no yes/no"),
    ("slow", 0.3, "timed out"),
    ("http500", 5, "HTTP 500"),
])
def test_bad_replies_are_unavailable_with_reason(server, mode, timeout, reason):
    ans = JudgeClient(f"{server}/{mode}/v1", "m", timeout_s=timeout).ask("q", _frames())
    assert ans.status == "unavailable" and reason in ans.reason


def test_unreachable_endpoint_is_unavailable():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    ans = JudgeClient(f"http://127.0.0.1:{port}/v1", "m", timeout_s=2).ask("q", _frames())
    assert ans.status == "unavailable" and "unreachable" in ans.reason


def test_reply_parsing_and_urls():
    assert parse_yes_no("Yes, clearly.") == "yes"
    assert parse_yes_no("Answer: no") == "no"
    assert parse_yes_no("Nope") is None and parse_yes_no(None) is None
    assert chat_endpoint("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_endpoint("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    with pytest.raises(ValueError):
        JudgeClient("", "m")


def test_language_model_parser(server):
    got, reason = parse_instruction_llm("She nods for 4 s and looks happy", JudgeClient(f"{server}/llm/v1", "m"))
    assert reason is None
    assert [(a.kind, a.value, a.start_s, a.end_s, a.source) for a in got] == [
        ("head_motion", "nod", 0.0, 4.0, "llm"), ("emotion", "happy", 0.0, None, "llm")]
    got, reason = parse_instruction_llm("x", JudgeClient(f"{server}/llmbad/v1", "m"))
    assert got is None and "rejected" in reason
