"""Local LoRA SFT: a plain loop a reader can follow top to bottom.

Why not trl's SFTTrainer: a federated round is N optimizer steps (not epochs) at a learning rate
set by the server's round schedule, and FedProx and SCAFFOLD change the step itself (a proximal
term in the loss, a control-variate correction of the gradient). In a plain loop each of those
is one visible line; through a Trainer they are callbacks and subclass overrides, and each round
would pay the Trainer's set-up again.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from fedrai.config import TrainConfig
from fedrai.data import Row
from fedrai.data.formatting import IGNORE_INDEX, collate, tokenize_row
from fedrai.model import trainable_by_state_key

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase


@dataclass
class TrainResult:
    loss_first: float
    loss_mean: float
    loss_last: float
    steps: int
    examples: int  # rows that had a trainable response token
    skipped: int  # rows whose response did not fit max_seq_length
    seconds: float

    def as_metrics(self) -> dict[str, float]:
        return {f"train.{k}": float(v) for k, v in asdict(self).items()}


def round_learning_rate(cfg: TrainConfig, server_round: int, num_rounds: int) -> float:
    """Learning rate of a round: the peak in round 1 decaying to ``min_lr_ratio`` x peak in the last."""
    if cfg.lr_schedule == "constant" or num_rounds <= 1:
        return cfg.learning_rate
    progress = (server_round - 1) / (num_rounds - 1)
    low = cfg.min_lr_ratio
    if cfg.lr_schedule == "linear":
        factor = 1.0 - (1.0 - low) * progress
    else:
        factor = low + (1.0 - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.learning_rate * factor


def train_lora(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[Row],
    *,
    steps: int,
    batch_size: int,
    grad_accum: int,
    learning_rate: float,
    max_seq_length: int,
    seed: int,
    optimizer: str = "adamw",
    max_grad_norm: float = 1.0,
    weight_decay: float = 0.0,
    proximal_mu: float = 0.0,
    grad_correction: dict[str, torch.Tensor] | None = None,
    progress: bool = False,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train the adapter in place for ``steps`` optimizer steps on ``rows``.

    ``proximal_mu`` adds FedProx's ``mu/2 * ||w - w_global||^2`` (w_global = the adapter at
    entry). ``grad_correction`` (adapter-state key -> tensor) is SCAFFOLD's ``c - c_i``, applied
    as ``w -= lr * correction`` after each optimizer step: with SGD that is exactly the paper's
    corrected step (unclipped), and with AdamW it is what OpenFedLLM does, rather than letting
    Adam rescale the correction. ``on_step`` is called with the number of steps done after each.
    """
    started = time.perf_counter()
    examples = [e for e in (tokenize_row(tokenizer, r, max_seq_length) for r in rows) if e is not None]
    skipped = len(rows) - len(examples)
    if not examples:
        raise ValueError(
            f"no trainable rows: {len(rows)} given, {skipped} had no response token within max_seq_length"
        )

    params = trainable_by_state_key(model)
    anchors = {k: p.detach().clone() for k, p in params.items()} if proximal_mu > 0 else {}
    corrections = (
        {k: grad_correction[k].to(device=p.device, dtype=p.dtype) for k, p in params.items()}
        if grad_correction is not None
        else {}
    )
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params.values(), lr=learning_rate, weight_decay=weight_decay
        )
    else:
        opt = torch.optim.AdamW(params.values(), lr=learning_rate, weight_decay=weight_decay)
    device = next(iter(params.values())).device
    order = _example_order(len(examples), steps * grad_accum * batch_size, seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    losses: list[float] = []
    model.train()
    bar = _progress(steps, progress)
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
        torch.manual_seed(seed)  # LoRA dropout
        cursor = 0
        for step in range(steps):
            step_loss = 0.0
            for _micro in range(grad_accum):
                batch = [examples[i] for i in order[cursor : cursor + batch_size]]
                cursor += batch_size
                inputs = {k: v.to(device) for k, v in collate(batch, pad_id).items()}
                loss = response_loss(model, inputs) / grad_accum
                step_loss += loss.item()
                if anchors:
                    prox = sum(((p - anchors[k]) ** 2).sum() for k, p in params.items())
                    loss = loss + (proximal_mu / 2.0) * prox / grad_accum
                loss.backward()
            if max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params.values(), max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():  # SCAFFOLD: y <- y - lr * (c - c_i), after the optimizer's own step
                for k, correction in corrections.items():
                    params[k].add_(correction, alpha=-learning_rate)
            losses.append(step_loss)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{step_loss:.3f}")
            if on_step is not None:
                on_step(step + 1)
    if bar is not None:
        bar.close()
    model.eval()
    return TrainResult(
        loss_first=losses[0],
        loss_mean=sum(losses) / len(losses),
        loss_last=losses[-1],
        steps=steps,
        examples=len(examples),
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


# Heads that do more than a linear map (soft-capping, scaling) take the library's own loss.
_HEAD_EXTRAS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def response_loss(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The causal-LM loss (mean over labelled tokens), computing logits only where a label is.

    The library computes fp32 logits for every position (batch x length x vocabulary) and the
    loss keeps several copies of them for backward: for SmolLM2's 49k vocabulary at batch 4 x 256
    that is about 1 GB of a client's peak memory. Only response tokens carry labels, so the LM
    head runs on those positions alone, in chunks of ``LOSS_CHUNK`` positions whose logits are
    recomputed in backward; the loss and its gradients are the same (up to summation order).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings()
    decoder = getattr(base, "model", None)
    if (
        not isinstance(head, torch.nn.Linear)
        or not isinstance(decoder, torch.nn.Module)
        or any(getattr(base.config, name, None) for name in _HEAD_EXTRAS)
    ):
        return model(**inputs).loss
    hidden = decoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    targets = inputs["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    h, t = hidden[:, :-1][keep], targets[keep]
    if len(t) <= LOSS_CHUNK:
        return torch.nn.functional.cross_entropy(head(h).float(), t)
    # Long batches: the loss of each chunk of positions is recomputed in backward instead of
    # keeping its logits, so at most one chunk's logits are alive at a time.
    from torch.utils.checkpoint import checkpoint

    total = sum(
        checkpoint(_summed_loss, head, h[i : i + LOSS_CHUNK], t[i : i + LOSS_CHUNK], use_reentrant=False)
        for i in range(0, len(t), LOSS_CHUNK)
    )
    return total / len(t)


LOSS_CHUNK = 256  # labelled positions whose logits are alive at once in a long batch


def _summed_loss(head: torch.nn.Module, h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(head(h).float(), t, reduction="sum")


def _example_order(n: int, needed: int, seed: int) -> list[int]:
    """Seeded epochs of shuffled indices, as many as the steps need."""
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < needed:
        epoch = list(range(n))
        rng.shuffle(epoch)
        order.extend(epoch)
    return order


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="local steps", leave=False)
