"""Who writes critiques and revisions: the model itself, another local model, or an HTTP endpoint.

CAI's point is that a model critiques itself, so the default is the current global model with its
adapter. A small model critiques badly, so users can point CAI at a stronger local model or at any
OpenAI-compatible server (vLLM, llama.cpp server, Ollama) instead; all three speak one tiny
protocol so the engine never knows which it has.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from fedrai.config import ExperimentConfig

log = logging.getLogger(__name__)

Conversation = list[dict[str, str]]
GenerateFn = Callable[..., list[str]]


class CriticError(RuntimeError):
    """The critic could not produce completions (e.g. an endpoint kept failing)."""


@runtime_checkable
class Critic(Protocol):
    """Completes chat conversations; ``generated_tokens`` counts output tokens so far (for cost)."""

    generated_tokens: int

    def complete(self, conversations: list[Conversation]) -> list[str]: ...


def _default_generate() -> GenerateFn:
    from fedrai.evaluation.generation import generate

    return generate


class SelfModel:
    """A loaded model + tokenizer (by default the current global model with its adapter)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int,
        batch_size: int = 8,
        generate_fn: GenerateFn | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self._generate = generate_fn
        self.generated_tokens = 0

    def complete(self, conversations: list[Conversation]) -> list[str]:
        if not conversations:
            return []
        generate = self._generate or _default_generate()
        was_training = bool(getattr(self.model, "training", False))
        self.model.eval()
        try:
            outs = generate(
                self.model,
                self.tokenizer,
                conversations,
                max_new_tokens=self.max_new_tokens,
                batch_size=self.batch_size,
                do_sample=False,
            )
        finally:
            if was_training:
                self.model.train()
        # generate returns text only; re-tokenising is a close, backend-independent token count.
        self.generated_tokens += sum(
            min(len(self.tokenizer(o, add_special_tokens=False)["input_ids"]), self.max_new_tokens)
            for o in outs
        )
        return list(outs)


class LocalModel(SelfModel):
    """A separately configured local model dir or hub id (frozen; no adapter)."""

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, generate_fn: GenerateFn | None = None) -> LocalModel:
        from fedrai.model import load_base_model

        if not cfg.cai.llm_model:
            raise ValueError("cai.llm = 'local' needs cai.llm_model (a model dir or hub id)")
        model_cfg = cfg.model.model_copy(update={"name_or_path": cfg.cai.llm_model, "revision": None})
        model, tokenizer = load_base_model(model_cfg)
        model.eval()
        return cls(
            model,
            tokenizer,
            max_new_tokens=cfg.cai.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            generate_fn=generate_fn,
        )


class HttpModel:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint, with timeouts and retries.

    Retries cover timeouts, connection errors, 429 and 5xx (a busy vLLM or a restarting llama.cpp
    server); other 4xx fail at once because retrying a bad request cannot help.
    """

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
        key = api_key if api_key is not None else os.environ.get("FEDRAI_CAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers)
        self.generated_tokens = 0
        self.requests = 0
        self.retried = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def complete(self, conversations: list[Conversation]) -> list[str]:
        if not conversations:
            return []
        if self.concurrency == 1 or len(conversations) == 1:
            return [self._one(c) for c in conversations]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(self._one, conversations))

    def _one(self, conversation: Conversation) -> str:
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
                self.retried += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.requests += 1
            try:
                resp = self._client.post(self.url, json=body)
            except httpx.TimeoutException:
                last = "timed out"
                continue
            except httpx.TransportError as err:
                last = f"transport error: {err}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code >= 400:
                raise CriticError(f"{self.url}: HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                data = resp.json()
                text = data["choices"][0]["message"]["content"] or ""
            except (ValueError, KeyError, IndexError, TypeError) as err:
                raise CriticError(f"{self.url}: not an OpenAI chat completion ({err!r})") from None
            usage = data.get("usage") or {}
            tokens = usage.get("completion_tokens")
            self.generated_tokens += int(tokens) if isinstance(tokens, int) else len(text.split())
            return str(text)
        raise CriticError(f"{self.url}: failed after {self.retries + 1} attempts (last: {last})")


def build_critic(
    cfg: ExperimentConfig,
    model: Any = None,
    tokenizer: Any = None,
    generate_fn: GenerateFn | None = None,
) -> Critic:
    """The critic ``cfg.cai.llm`` asks for; ``self`` needs the current model and tokenizer."""
    kind = cfg.cai.llm
    if kind == "self":
        if model is None or tokenizer is None:
            raise ValueError("cai.llm = 'self' needs the current model and tokenizer")
        return SelfModel(
            model,
            tokenizer,
            max_new_tokens=cfg.cai.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            generate_fn=generate_fn,
        )
    if kind == "local":
        return LocalModel.from_config(cfg, generate_fn=generate_fn)
    return HttpModel(
        cfg.cai.http_url,
        cfg.cai.llm_model,
        max_new_tokens=cfg.cai.max_new_tokens,
        timeout_s=cfg.cai.http_timeout_s,
        retries=cfg.cai.http_retries,
    )
