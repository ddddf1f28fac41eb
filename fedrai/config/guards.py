"""The responsible-AI guards: the client safety filter and constitutional AI."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from fedrai.config.base import Section, absolute_if_exists


class SafetyConfig(Section):
    """The client-side safety filter on local (prompt, response) pairs."""

    enabled: bool = Field(False, description="Screen client data before local training.")
    backend: Literal["factored", "cross_encoder", "embedded", "llama_guard", "detoxify"] = Field(
        "factored",
        description="Classifier backend: `factored` = P(prompt asks for harm) x P(answer complies) on MiniLM "
        "embeddings (default; no `response` mode), `embedded` = one head over the exchange's embeddings.",
    )
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Rows scoring at or above this unsafe probability are flagged."
    )
    mode: Literal["prompt", "response", "response_in_context"] = Field(
        "response_in_context", description="What is judged: a refusal to a harmful prompt is safe in context."
    )
    action: Literal["drop", "refuse", "revise"] = Field("drop", description="What happens to flagged rows.")
    head_path: str | None = Field(
        None,
        description="Embedded / factored backend: trained head file; cross_encoder backend: trained model "
        "dir (default: the shipped one).",
    )
    encoder: str = Field(
        "embedded:minilm-l6-v2", description="Embedded / factored backend: sentence-transformers encoder."
    )
    encoder_dtype: Literal["head", "float32", "bfloat16"] = Field(
        "head",
        description="Embedded backend: encoder compute dtype; `head` = the one the head was trained on "
        "(float32 for the shipped head; bfloat16 is ~3.5x float32 on CPUs with AMX/AVX512-BF16 but ~8x "
        "slower without them; a mismatch warns).",
    )
    encoder_threads: int = Field(
        1,
        ge=0,
        description="Embedded backend: torch threads while encoding (0 = torch's default, all cores). 1 is "
        "far faster on a small machine shared with other jobs or clients; raise it on a dedicated many-core one.",
    )
    llama_guard_model: str = Field(
        "meta-llama/Llama-Guard-3-1B", description="Llama Guard 3 hub id or local dir."
    )
    llama_guard_categories: list[str] = Field(
        default_factory=list, description="Custom category lines (empty = S1-S14)."
    )
    detoxify_checkpoint: str | None = Field(None, description="Detoxify checkpoint file for offline use.")
    detoxify_config_dir: str | None = Field(
        None, description="Hugging Face config dir for an offline Detoxify checkpoint."
    )
    max_chars: int = Field(8000, ge=1, description="Longer texts are truncated (and counted) before scoring.")
    on_unparseable: Literal["unsafe", "safe"] = Field(
        "unsafe", description="Verdict for unparseable judge output (fail closed)."
    )
    batch_size: int = Field(64, ge=1, description="Rows scored per batch.")

    @field_validator("head_path")
    @classmethod
    def _absolute_head_path(cls, value: str | None) -> str | None:
        return absolute_if_exists(value)


class CAIConfig(Section):
    """Constitutional AI critique-and-revise, on clients, on the server, or both."""

    placement: Literal["none", "client", "server", "both"] = Field("none", description="Where CAI runs.")
    constitution: str | None = Field(None, description="Constitution TOML/YAML (default: the shipped one).")
    client_scope: Literal["flagged", "all"] = Field(
        "flagged", description="Client CAI over filtered rows only (cheap) or all rows."
    )
    principle_order: Literal["random", "sequence"] = Field(
        "random", description="Draw one principle per row, or apply in order."
    )
    revision_rounds: int = Field(1, ge=1, description="Critique/revise passes per row.")
    max_tries: int = Field(
        2,
        ge=0,
        description="Revisions tried before the fallback (0 = none: a flagged row gets the fallback at once, no "
        "critique or revision is generated; on the server with `server_assume_harmful` and SFT, not even the "
        "model's own answers).",
    )
    fallback: Literal["refuse", "drop"] = Field(
        "refuse", description="What happens when no revision passes the filter."
    )
    llm: Literal["self", "local", "http"] = Field(
        "self",
        description="Who critiques: the current global model, another local model, or an HTTP endpoint.",
    )
    llm_model: str | None = Field(
        None, description="`local`: model id or path; `http`: model name sent to the endpoint."
    )
    http_url: str = Field("http://127.0.0.1:8080/v1", description="OpenAI-compatible base URL for `http`.")
    http_timeout_s: float = Field(60.0, gt=0.0, description="Per-request timeout for `http`.")
    http_retries: int = Field(2, ge=0, description="Retries for `http`.")
    max_new_tokens: int = Field(96, ge=1, description="Tokens per critique or revision.")
    server_prompts_source: str = Field(
        "embedded:strongreject", description="Red-team prompts for server-side CAI."
    )
    server_prompts_per_round: int = Field(
        8, ge=0, description="Red-team prompts critiqued per round on the server."
    )
    server_steps: int = Field(
        50, ge=0, description="Server tuning steps on revisions per round (the paper: 50)."
    )
    server_learning_rate: float = Field(1e-4, gt=0.0, description="Learning rate of server-side tuning.")
    server_assume_harmful: bool = Field(
        False,
        description="Treat every server red-team answer that is not already a refusal as unsafe (revise it or "
        "fall back to a refusal), instead of asking the filter: the prompts are harmful by construction.",
    )
    server_contrast_per_round: int = Field(
        0,
        ge=0,
        description="Contrast TRAIN rows (safe prompts with alarming words, answered helpfully) added to "
        "the server's benign anchor each round (SFT, and DPO pairs when cai.server_benign_dpo).",
    )
    server_benign_source: str = Field(
        "embedded:instructlab",
        description="Benign (prompt, response) rows mixed into server-side tuning so that it learns when "
        "NOT to refuse (rows the clients hold and held-out rows are excluded); empty = none.",
    )
    server_benign_per_round: int = Field(
        8,
        ge=0,
        description="Benign rows added to each round's server SFT (and as DPO pairs, see below); 0 = none.",
    )
    server_benign_dpo: bool = Field(
        True,
        description="Also DPO on benign rows: their reference answer preferred over a constitution refusal.",
    )
    objective: Literal["sft", "dpo", "sft+dpo"] = Field(
        "sft", description="Train on revisions by SFT, DPO (revision over original), or both."
    )
    dpo_beta: float = Field(0.1, gt=0.0, description="DPO temperature.")

    @field_validator("constitution")
    @classmethod
    def _absolute_constitution(cls, value: str | None) -> str | None:
        return absolute_if_exists(value)
