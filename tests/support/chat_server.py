"""A local OpenAI-compatible chat-completions server with scripted replies, for tests.

`ChatServer` runs a ThreadingHTTPServer on 127.0.0.1 (random port) in a thread. Each POST to
.../chat/completions takes the next step of the script for its first path segment (the "route"), so one
server serves many scenarios: /valid/v1, /bad/v1, ... A step is a dict:
  {"text": "..."}             200 with that assistant message content
  {"status": 500, "body": ""} that status and raw body (429 may carry "retry_after")
  {"raw": "..."}              200 with a raw body that is not a chat completion
  {"sleep": 1.0, ...}         wait first (a slow server)
The last step of a route repeats. Every request body is recorded in `requests` (route, body).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(text: str) -> bytes:
    return json.dumps({"id": "cmpl-test", "object": "chat.completion", "created": 0, "model": "scripted",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop"}]}).encode()


class ChatServer:
    def __init__(self) -> None:
        self.scripts: dict[str, list[dict]] = {}
        self.requests: list[tuple[str, dict]] = []
        self._pos: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                route = self.path.strip("/").split("/")[0]
                step = server._next(route, body)
                if step.get("sleep"):
                    time.sleep(step["sleep"])
                status = int(step.get("status", 200))
                if "text" in step:
                    data = completion(step["text"])
                else:
                    data = (step.get("raw") or step.get("body") or "").encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    if step.get("retry_after") is not None:
                        self.send_header("Retry-After", str(step["retry_after"]))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _next(self, route: str, body: dict) -> dict:
        with self._lock:
            self.requests.append((route, body))
            script = self.scripts.get(route) or [{"status": 404, "body": json.dumps({"error": "no script"})}]
            i = self._pos.get(route, 0)
            self._pos[route] = i + 1
            return script[min(i, len(script) - 1)]

    def script(self, route: str, *steps: dict) -> str:
        """Set a route's replies; returns its base URL."""
        with self._lock:
            self.scripts[route] = list(steps)
            self._pos[route] = 0
        return self.url(route)

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{route}/v1"

    def count(self, route: str) -> int:
        with self._lock:
            return sum(1 for r, _ in self.requests if r == route)

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
