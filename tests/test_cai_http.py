"""HttpModel against a minimal OpenAI-compatible stand-in server on 127.0.0.1 (not llama.cpp:
llama-cpp-python compiles from source, too costly for the test suite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedrai.safety.cai import CriticError, HttpModel
from tests.openai_fake import FakeOpenAI


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def _model(url: str, **kw) -> HttpModel:
    kw = {"max_new_tokens": 16, "timeout_s": 2.0, "retries": 2, "backoff_s": 0.01, **kw}
    return HttpModel(url, "smollm2", **kw)


def test_completes_in_order_and_counts_tokens(server: FakeOpenAI) -> None:
    with _model(server.url) as m:
        convs = [[{"role": "user", "content": f"q{i}"}] for i in range(5)]
        assert m.complete(convs) == [f"echo: q{i}" for i in range(5)]
        assert m.generated_tokens == 15 and m.retried == 0
    body = server.bodies[0]
    assert body["model"] == "smollm2" and body["max_tokens"] == 16 and body["temperature"] == 0.0


def test_retries_after_a_500(server: FakeOpenAI) -> None:
    server.script = ["500"]
    with _model(server.url, concurrency=1) as m:
        assert m.complete([[{"role": "user", "content": "hi"}]]) == ["echo: hi"]
        assert m.retried == 1 and m.requests == 2


def test_retries_after_a_timeout(server: FakeOpenAI) -> None:
    server.script = ["stall"]
    with _model(server.url, timeout_s=0.2, concurrency=1) as m:
        assert m.complete([[{"role": "user", "content": "hi"}]]) == ["echo: hi"]
        assert m.retried == 1


def test_gives_up_after_retries_and_fails_fast_on_4xx(server: FakeOpenAI) -> None:
    server.script = ["500", "500", "500"]
    with _model(server.url, retries=2) as m, pytest.raises(CriticError, match="after 3 attempts.*HTTP 500"):
        m.complete([[{"role": "user", "content": "hi"}]])
    server.script = ["400"]
    with _model(server.url) as m, pytest.raises(CriticError, match="HTTP 400"):
        m.complete([[{"role": "user", "content": "hi"}]])
    assert len(server.bodies) == 4  # the 400 was not retried


def test_connection_refused_is_retried_then_reported() -> None:
    with FakeOpenAI() as s:
        url = s.url  # bound, then closed on exit: nothing listens there afterwards
    with _model(url, retries=1) as m, pytest.raises(CriticError, match="transport error"):
        m.complete([[{"role": "user", "content": "hi"}]])
