"""A client for OpenAI-compatible chat endpoints (vLLM, llama.cpp server, Ollama, hosted APIs).

Shared by the CAI critic (``fedrai.safety.cai``) and the MT-Bench judge (``fedrai.evaluation``):
one place for time-outs, retries and request accounting.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

Conversation = list[dict[str, str]]


class EndpointError(RuntimeError):
    """The endpoint could not produce a completion (kept failing, refused the request, bad reply)."""


class ChatEndpoint:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint, with timeouts and retries.

    Retries cover timeouts, connection errors, 429 and 5xx (a busy vLLM or a restarting llama.cpp
    server); other 4xx fail at once because retrying a bad request cannot help. ``requests``,
    ``retried`` and ``timeouts`` count what happened, for the caller's metrics.
    """

    API_KEY_ENV = "FEDRAI_API_KEY"  # read when no ``api_key`` is given; subclasses name their own

    def __init__(
        self,
        base_url: str,
        model: str | None,
        *,
        max_new_tokens: int,
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        temperature: float = 0.0,
        concurrency: int = 4,
        api_key: str | None = None,
    ) -> None:
        import httpx

        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model or "default"
        self.max_new_tokens = max_new_tokens
        self.retries = retries
        self.backoff_s = backoff_s
        self.temperature = temperature
        self.concurrency = max(1, concurrency)
        key = api_key if api_key is not None else os.environ.get(self.API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers)
        self.generated_tokens = 0
        self.requests = 0
        self.retried = 0
        self.timeouts = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ChatEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def complete(self, conversations: list[Conversation]) -> list[str]:
        if not conversations:
            return []
        if self.concurrency == 1 or len(conversations) == 1:
            return [self.complete_one(c) for c in conversations]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(self.complete_one, conversations))

    def complete_each(self, conversations: list[Conversation]) -> list[str | EndpointError]:
        """Like :meth:`complete`, but a conversation that fails yields its error instead of raising."""

        def one(conversation: Conversation) -> str | EndpointError:
            try:
                return self.complete_one(conversation)
            except EndpointError as err:
                return err

        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(one, conversations))

    def complete_one(self, conversation: Conversation) -> str:
        """One chat completion, retried as the class docstring says; raises :class:`EndpointError`."""
        import httpx

        body = {
            "model": self.model,
            "messages": conversation,
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "stream": False,
        }
        last = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self._count("retried")
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self._count("requests")
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.TimeoutException:
                self._count("timeouts")
                last = "timed out"
                continue
            except httpx.TransportError as err:
                last = f"transport error: {err}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code >= 400:
                raise EndpointError(f"{self.url}: HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                data = resp.json()
                text = data["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError) as err:
                raise EndpointError(f"{self.url}: not an OpenAI chat completion ({err!r})") from None
            usage = data.get("usage") or {}
            tokens = usage.get("completion_tokens")
            self._count("generated_tokens", int(tokens) if isinstance(tokens, int) else len(text.split()))
            return str(text)
        raise EndpointError(f"{self.url}: failed after {self.retries + 1} attempts (last: {last})")

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:  # requests run on a thread pool
            setattr(self, name, getattr(self, name) + by)
