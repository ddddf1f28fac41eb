"""HttpModel against a minimal OpenAI-compatible stand-in server on 127.0.0.1 (not llama.cpp:
llama-cpp-python compiles from source, too costly for the test suite)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fedrai.safety.cai import CriticError, HttpModel


class _StandIn:
    """Speaks POST /v1/chat/completions; ``script`` is consumed one entry per request:
    ``ok``, ``500``, ``400``, ``stall`` (sleeps past the client timeout, then answers)."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                action = outer.script.pop(0) if outer.script else "ok"
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if action == "stall":
                    time.sleep(0.6)
                if action in ("500", "400"):
                    return self._send(int(action), {"error": action})
                last = body["messages"][-1]["content"]
                self._send(
                    200,
                    {
                        "object": "chat.completion",
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": f"echo: {last}"}}
                        ],
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

    def __enter__(self) -> _StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[_StandIn]:
    with _StandIn() as s:
        yield s


def _model(url: str, **kw) -> HttpModel:
    kw = {"max_new_tokens": 16, "timeout_s": 2.0, "retries": 2, "backoff_s": 0.01, **kw}
    return HttpModel(url, "smollm2", **kw)


def test_completes_in_order_and_counts_tokens(server: _StandIn) -> None:
    with _model(server.url) as m:
        convs = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
        assert m.complete(convs) == [f"echo: q{i}" for i in range(5)]
        assert m.generated_tokens == 15 and m.retried == 0
    body = server.bodies[0]
    assert body["model"] == "smollm2" and body["max_tokens"] == 16 and body["temperature"] == 0.0


def test_retries_after_a_500(server: _StandIn) -> None:
    server.script = ["500"]
    with _model(server.url, concurrency=1) as m:
        assert m.complete([[{"role": "user", "content": "hi"}]]) == ["echo: hi"]
        assert m.retried == 1 and m.requests == 2


def test_retries_after_a_timeout(server: _StandIn) -> None:
    server.script = ["stall"]
    with _model(server.url, timeout_s=0.2, concurrency=1) as m:
        assert m.complete([[{"role": "user", "content": "hi"}]]) == ["echo: hi"]
        assert m.retried == 1


def test_gives_up_after_retries_and_fails_fast_on_4xx(server: _StandIn) -> None:
    server.script = ["500", "500", "500"]
    with _model(server.url, retries=2) as m, pytest.raises(CriticError, match="after 3 attempts.*HTTP 500"):
        m.complete([[{"role": "user", "content": "hi"}]])
    server.script = ["400"]
    with _model(server.url) as m, pytest.raises(CriticError, match="HTTP 400"):
        m.complete([[{"role": "user", "content": "hi"}]])
    assert len(server.bodies) == 4  # the 400 was not retried


def test_connection_refused_is_retried_then_reported() -> None:
    with _StandIn() as s:
        url = s.url  # bound, then closed on exit: nothing listens there afterwards
    with _model(url, retries=1) as m, pytest.raises(CriticError, match="transport error"):
        m.complete([[{"role": "user", "content": "hi"}]])
