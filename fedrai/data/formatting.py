"""Rows to token ids with the model's chat template, loss on the response only.

The prompt is rendered with ``add_generation_prompt=True`` and the response appended with the
template's end-of-turn token, so training sees exactly what generation will see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from fedrai.data import Row

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100


def tokenize_row(
    tokenizer: PreTrainedTokenizerBase, row: Row, max_seq_length: int
) -> dict[str, list[int]] | None:
    """``input_ids`` and ``labels`` (-100 on the prompt); None when no response token fits."""
    prompt_ids = _ids(
        tokenizer.apply_chat_template(list(row["messages"]), add_generation_prompt=True, tokenize=True)
    )
    full_ids = _ids(
        tokenizer.apply_chat_template(
            [*row["messages"], {"role": "assistant", "content": row["response"]}], tokenize=True
        )
    )
    if full_ids[: len(prompt_ids)] != prompt_ids:
        # Templates that rewrite earlier turns: fall back to prompt + response + eos.
        response_ids = tokenizer(row["response"], add_special_tokens=False)["input_ids"]
        full_ids = prompt_ids + response_ids + [tokenizer.eos_token_id]
    full_ids = full_ids[:max_seq_length]
    labels = [IGNORE_INDEX] * min(len(prompt_ids), len(full_ids)) + full_ids[len(prompt_ids) :]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": full_ids, "labels": labels}


def _ids(rendered: object) -> list[int]:
    """apply_chat_template returns a list, or a BatchEncoding in newer transformers."""
    if isinstance(rendered, dict) or hasattr(rendered, "input_ids"):
        rendered = rendered["input_ids"]  # type: ignore[index]
    return list(rendered)  # type: ignore[arg-type]


def collate(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch for training."""
    width = max(len(e["input_ids"]) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        input_ids[i, :n] = torch.tensor(e["input_ids"])
        labels[i, :n] = torch.tensor(e["labels"])
        attention[i, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
