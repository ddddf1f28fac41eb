"""Batched chat generation, response-only loss and answer log-likelihoods: the model calls evaluation makes.

Generation left-pads (so every row's next token sits in the last column), decodes greedily by
default and returns only the new text. Prompts are sorted by length before batching, so a batch
pads little, and answers are put back in the caller's order. Batched and one-at-a-time greedy
outputs agree because padding is masked and position ids are derived from the attention mask.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from fedrai.data import Row
from fedrai.data.formatting import IGNORE_INDEX, collate, tokenize_row

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase


def generate(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    conversations: list[list[dict]],
    *,
    max_new_tokens: int,
    batch_size: int,
    do_sample: bool = False,
    progress: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Answer each conversation (a list of role/content messages); returns only the new text.

    Works for a plain transformers model and a peft model. The model is put in eval mode for the
    call (LoRA dropout off) and restored after; nothing else about it is changed.
    ``on_batch(n)`` is called after each batch with its number of prompts (progress displays).
    """
    if not conversations:
        return []
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"batch_size ({batch_size}) and max_new_tokens ({max_new_tokens}) must be >= 1")
    prompts = [render_prompt(tokenizer, conv) for conv in conversations]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    pad_id = _pad_id(tokenizer)
    gen_kwargs = _generation_kwargs(model, tokenizer, max_new_tokens, do_sample, pad_id)
    device = _device_of(model)
    outputs: list[str] = [""] * len(conversations)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with _eval_mode(model), torch.inference_mode():
        for batch in _progress(batches, progress):
            input_ids, attention = _left_pad([encoded[i] for i in batch], pad_id)
            generated = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device), **gen_kwargs
            )
            new_tokens = generated[:, input_ids.shape[1] :].cpu()
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                outputs[i] = text.strip()
            if on_batch is not None:
                on_batch(len(batch))
    return outputs


def render_prompt(tokenizer: PreTrainedTokenizerBase, conversation: Sequence[dict]) -> str:
    """The chat-template text the model continues (with the assistant header appended)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)
    # A base model without a template: plain text, one turn a paragraph.
    return "\n\n".join(str(m["content"]) for m in conversation) + "\n\n"


def response_loss(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Row],
    batch_size: int,
    *,
    max_seq_length: int = 512,
) -> float:
    """Mean cross-entropy per response token over ``rows`` (prompt tokens are not scored).

    Token-weighted over the whole set, so it does not depend on how rows are batched. NaN when no
    row has a response token within ``max_seq_length``.
    """
    examples = [ex for row in rows if (ex := tokenize_row(tokenizer, row, max_seq_length)) is not None]
    if not examples:
        return float("nan")
    pad_id = _pad_id(tokenizer)
    device = _device_of(model)
    total, count = 0.0, 0
    examples.sort(key=lambda e: len(e["input_ids"]))
    with _eval_mode(model), torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], pad_id)
            logits = model(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).logits
            shift_logits = logits[:, :-1, :].float()
            shift_labels = batch["labels"][:, 1:].to(device)
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.shape[-1]),
                shift_labels.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            total += float(loss)
            count += int((shift_labels != IGNORE_INDEX).sum())
    return total / count if count else math.nan


@dataclass(frozen=True)
class ContinuationScore:
    """log P(continuation | conversation): summed over its tokens, with the token count."""

    logprob: float
    tokens: int
    truncated: bool  # the conversation lost its oldest tokens to fit ``max_tokens``

    @property
    def per_token(self) -> float:
        return self.logprob / self.tokens if self.tokens else float("-inf")


def continuation_logprobs(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[dict]],
    continuations: Sequence[str],
    *,
    batch_size: int,
    max_tokens: int = 2048,
) -> list[ContinuationScore]:
    """Score each continuation as the assistant's next turn of its conversation (no generation).

    The conversation is rendered with the chat template (assistant header appended) and the
    continuation's own tokens follow it; only those are scored, as BIG-bench's ``cond_log_prob``
    scores the target alone (the template's end-of-turn token is not). Rows are left-padded so
    every continuation ends in the last column and only its logits are computed
    (``logits_to_keep``), which keeps memory at batch x answer length x vocabulary.
    """
    if len(conversations) != len(continuations):
        raise ValueError(f"{len(conversations)} conversations but {len(continuations)} continuations")
    if batch_size < 1:
        raise ValueError(f"batch_size ({batch_size}) must be >= 1")
    items: list[tuple[list[int], int, bool]] = []
    for conv, cont in zip(conversations, continuations, strict=True):
        ctx = tokenizer(render_prompt(tokenizer, conv), add_special_tokens=False)["input_ids"]
        ans = tokenizer(cont, add_special_tokens=False)["input_ids"][: max_tokens - 1]
        if not ans:
            raise ValueError(f"empty continuation {cont!r}: nothing to score")
        keep = max_tokens - len(ans)
        truncated = len(ctx) > keep
        items.append((ctx[-keep:] + ans, len(ans), truncated))
    pad_id = _pad_id(tokenizer)
    device = _device_of(model)
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]), reverse=True)
    out: list[ContinuationScore | None] = [None] * len(items)
    with _eval_mode(model), torch.inference_mode():
        for batch in _token_batches(order, [len(items[i][0]) for i in range(len(items))], batch_size):
            input_ids, attention = _left_pad([items[i][0] for i in batch], pad_id)
            width = max(items[i][1] for i in batch)
            position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
            inputs = {
                "input_ids": input_ids.to(device),
                "attention_mask": attention.to(device),
                "position_ids": position_ids.to(device),
            }
            try:
                logits = model(**inputs, logits_to_keep=width + 1).logits
            except TypeError:  # an architecture without logits_to_keep: all positions, then cut
                logits = model(**inputs).logits
            logits = logits[:, -(width + 1) : -1, :]
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            targets = input_ids[:, -width:]
            picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(batch):
                n = items[i][1]
                out[i] = ContinuationScore(float(picked[row, width - n :].sum()), n, items[i][2])
    return [s for s in out if s is not None]


def shared_context_logprobs(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[dict]],
    continuations: Sequence[Sequence[str]],
    *,
    batch_size: int,
    max_tokens: int = 2048,
) -> list[list[ContinuationScore]]:
    """Score several continuations of each conversation, running each conversation's tokens once.

    The same figures as :func:`continuation_logprobs` on every (conversation, continuation) pair,
    but a batch of conversations is run once with the KV cache on, the cache is repeated for each
    row's continuations and only the continuations are run on top of it. Scoring a refusal and a
    compliant answer to the same prompt then costs one context pass instead of two.
    """
    if len(conversations) != len(continuations):
        raise ValueError(f"{len(conversations)} conversations but {len(continuations)} continuation lists")
    if batch_size < 1:
        raise ValueError(f"batch_size ({batch_size}) must be >= 1")
    if not conversations:
        return []
    k = len(continuations[0])
    if k < 1 or any(len(c) != k for c in continuations):
        raise ValueError("every conversation needs the same number (>= 1) of continuations")
    answers = [
        [tokenizer(c, add_special_tokens=False)["input_ids"][: max_tokens - 1] for c in conts]
        for conts in continuations
    ]
    for conts, ids in zip(continuations, answers, strict=True):
        for cont, a in zip(conts, ids, strict=True):
            if not a:
                raise ValueError(f"empty continuation {cont!r}: nothing to score")
    contexts: list[tuple[list[int], bool]] = []
    for conv, ids in zip(conversations, answers, strict=True):
        ctx = tokenizer(render_prompt(tokenizer, conv), add_special_tokens=False)["input_ids"]
        keep = max(max_tokens - max(len(a) for a in ids), 1)
        contexts.append((ctx[-keep:], len(ctx) > keep))
    from transformers import DynamicCache

    pad_id = _pad_id(tokenizer)
    device = _device_of(model)
    order = sorted(range(len(contexts)), key=lambda i: len(contexts[i][0]), reverse=True)
    out: list[list[ContinuationScore]] = [[] for _ in contexts]
    with _eval_mode(model), torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ctx_ids, ctx_mask = _left_pad([contexts[i][0] for i in batch], pad_id)
            cache = DynamicCache()
            first = model(
                input_ids=ctx_ids.to(device),
                attention_mask=ctx_mask.to(device),
                position_ids=(ctx_mask.cumsum(-1) - 1).clamp(min=0).to(device),
                cache=cache,  # filled in place
                use_cache=True,
                logits_to_keep=1,
            )
            if cache.get_seq_length() != ctx_ids.shape[1]:  # e.g. a model that ignored use_cache
                raise RuntimeError("shared_context_logprobs: the model did not fill the KV cache")
            cache.batch_repeat_interleave(k)
            conts = [answers[i][j] for i in batch for j in range(k)]
            width = max(len(a) for a in conts)
            cont_ids = torch.full((len(conts), width), pad_id, dtype=torch.long)
            cont_mask = torch.zeros((len(conts), width), dtype=torch.long)
            for row, a in enumerate(conts):
                cont_ids[row, : len(a)] = torch.tensor(a, dtype=torch.long)
                cont_mask[row, : len(a)] = 1
            ctx_mask_k = ctx_mask.repeat_interleave(k, dim=0)
            ctx_len = ctx_mask_k.sum(-1, keepdim=True)
            logits = model(
                input_ids=cont_ids.to(device),
                attention_mask=torch.cat([ctx_mask_k, cont_mask], dim=1).to(device),
                position_ids=(ctx_len + torch.arange(width)).to(device),
                cache=cache,
                use_cache=True,
            ).logits
            # The context's last position predicts each continuation's first token.
            preds = torch.cat([first.logits[:, -1:, :].repeat_interleave(k, dim=0), logits[:, :-1, :]], dim=1)
            logp = torch.log_softmax(preds.float(), dim=-1).cpu()
            picked = logp.gather(-1, cont_ids.unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(batch):
                for j in range(k):
                    n = len(answers[i][j])
                    out[i].append(ContinuationScore(float(picked[row * k + j, :n].sum()), n, contexts[i][1]))
    return out


# ----------------------------------------------------------------------------- helpers
def _token_batches(
    order: list[int], lengths: list[int], max_rows: int, max_tokens: int = 4096
) -> Iterator[list[int]]:
    """Rows (longest first) grouped so a batch holds at most ``max_rows`` rows and, past its first
    row, ``max_tokens`` padded tokens: long dialogues go alone, short ones share a forward pass."""
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) >= max_rows or (len(batch) + 1) * lengths[batch[0]] > max_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("tokenizer has neither a pad nor an eos token; cannot batch")
    return int(pad)


def _left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            input_ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            attention[row, width - len(seq) :] = 1
    return input_ids, attention


def _generation_kwargs(
    model: Any, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int, do_sample: bool, pad_id: int
) -> dict[str, Any]:
    """Explicit settings, so a checkpoint's sampling defaults never leak into a greedy eval."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    eos = getattr(base, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    # Chat models end a turn with the template's end token (ChatML's <|im_end|>): stop on it too.
    eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        num_beams=1,
        pad_token_id=pad_id,
        eos_token_id=sorted(eos_ids) or None,
        bos_token_id=getattr(base, "bos_token_id", None),
        use_cache=True,
    )
    if do_sample:
        config.temperature = getattr(base, "temperature", None) or 1.0
        config.top_p = getattr(base, "top_p", None) or 1.0
    return {"generation_config": config}


def _device_of(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def _progress(batches: list[list[int]], enabled: bool) -> Any:
    if not enabled:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, desc="generate", unit="batch")
