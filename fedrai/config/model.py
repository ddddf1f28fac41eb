"""The base model and its LoRA adapter."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fedrai.config.base import EMBEDDED_MODEL, Section


class ModelConfig(Section):
    """The base causal LM and how it is loaded."""

    name_or_path: str = Field(
        EMBEDDED_MODEL,
        description="Hugging Face hub id, local checkpoint dir, or `embedded:NAME` for an offline asset.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for a hub id.")
    hub_id: str | None = Field(
        None,
        description="Hub id saved adapters name as their base (`base_model_name_or_path`); unset = the hub "
        "id itself, an embedded model's upstream id, or the local path as given.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Compute dtype of the base model weights."
    )
    quantization: Literal["none", "4bit", "8bit"] = Field(
        "none", description="bitsandbytes loading (QLoRA with `4bit`); needs a GPU for speed."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` picks CUDA when available.")
    trust_remote_code: bool = Field(False, description="Passed to transformers loaders.")
    max_seq_length: int = Field(
        512, ge=16, description="Tokens per training example (longer ones are truncated)."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory in local training.")


class LoraSettings(Section):
    """The LoRA adapter: the only weights that are trained and travel."""

    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA branch.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="Module names that get adapters (`all-linear` for every linear layer).",
    )
