"""A minimal OpenAI-compatible stand-in server on 127.0.0.1 for the HTTP client tests (CAI critic,
MT-Bench judge); not llama.cpp: llama-cpp-python compiles from source, too costly for the suite."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    """Speaks POST /v1/chat/completions; ``script`` is consumed one entry per request:
    ``ok``, ``500``, ``400``, ``junk`` (200, not a chat completion), ``stall`` (sleeps ``stall_s``, past the client timeout, then answers).
    ``reply`` makes the answer text from the request's messages (default: echo the last one)."""

    def __init__(self, reply: Callable[[list[dict]], str] | None = None, stall_s: float = 0.6) -> None:
        self.script: list[str] = []
        self.reply = reply or (lambda messages: f"echo: {messages[-1]['content']}")
        self.stall_s = stall_s
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                outer.headers.append(dict(self.headers))
                action = outer.script.pop(0) if outer.script else "ok"
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if action == "stall":
                    time.sleep(outer.stall_s)
                if action in ("500", "400"):
                    return self._send(int(action), {"error": action})
                if action == "junk":  # HTTP 200 with a body that is not a chat completion
                    return self._send(200, {"unexpected": True})
                text = outer.reply(body["messages"])
                self._send(
                    200,
                    {
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                        "usage": {"completion_tokens": 3},
                    },
                )

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
