"""Where client rows come from and how they are split over clients."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fedrai.config.base import Section


class DataConfig(Section):
    """Where client training data comes from and how rows are read."""

    source: str = Field(
        "embedded:instructlab",
        description="JSONL / CSV / JSON / parquet file, a dir of them, a saved `datasets` dir, a hub dataset id, or "
        "`embedded:NAME`.",
    )
    split: str = Field("train", description="Split to read for a hub dataset.")
    prompt_field: str = Field("prompt", description="Column with the user prompt (prompt+response rows).")
    response_field: str = Field("response", description="Column with the answer (prompt+response rows).")
    messages_field: str = Field(
        "messages", description="Column with chat messages (role/content); used when present."
    )
    system_field: str | None = Field(None, description="Optional column with a system prompt.")
    keep_system_prompt: bool = Field(
        False, description="Keep system messages from chat rows in training text."
    )
    max_rows: int = Field(
        0, ge=0, description="Read at most this many rows (0 = all); sampled with the seed."
    )
    on_bad_row: Literal["error", "skip"] = Field(
        "error", description="`error` stops with file and line; `skip` counts and reports skipped rows."
    )
    harmful_source: str = Field(
        "embedded:harmful-pairs", description="Harmful prompt+answer pairs mixed in by `harmful_fraction`."
    )
    contrast_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of each client's rows that are contrast TRAIN rows: safe prompts with alarming "
        "words answered helpfully (fedrai.data.contrast); 0 = none.",
    )
    harmful_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of each client's rows that are harmful pairs (the paper used ~0.3).",
    )
    heldout_rows: int = Field(
        32, ge=0, description="Benign rows held out from training for server-side loss."
    )


class PartitionConfig(Section):
    """How rows are split over clients."""

    method: Literal["iid", "dirichlet"] = Field("iid", description="IID or label-skewed Dirichlet split.")
    alpha: float = Field(0.5, gt=0.0, description="Dirichlet concentration (smaller = more skewed).")
    partition_by: str = Field("group", description="Column whose values the Dirichlet split skews.")
    min_partition_size: int = Field(
        2, ge=0, description="Dirichlet resamples until every client has this many rows."
    )
    rows_per_client: int = Field(
        0, ge=0, description="Cap on rows per client after partitioning (0 = no cap)."
    )
