"""Who writes critiques and revisions: the model itself, another local model, or an HTTP endpoint.

CAI's point is that a model critiques itself, so the default is the current global model with its
adapter. A small model critiques badly, so users can point CAI at a stronger local model or at any
OpenAI-compatible server (vLLM, llama.cpp server, Ollama) instead; all three speak one tiny
protocol so the engine never knows which it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fedrai.chat_endpoint import ChatEndpoint, Conversation, EndpointError

if TYPE_CHECKING:  # pragma: no cover
    from fedrai.config import ExperimentConfig

log = logging.getLogger(__name__)

GenerateFn = Callable[..., list[str]]


# The critic could not produce completions (e.g. an endpoint kept failing): the endpoint's error.
CriticError = EndpointError


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


class HttpModel(ChatEndpoint):
    """The critic as an OpenAI-compatible endpoint (key from ``FEDRAI_CAI_API_KEY``)."""

    API_KEY_ENV = "FEDRAI_CAI_API_KEY"


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
