"""DPO on revision-vs-original pairs: the paper's preference step after critique-and-revise.

SFT on revisions teaches what to say; DPO additionally pushes probability away from the harmful
original, which is what the reference result trained. trl's DPOTrainer runs on the LoRA adapter in
place: with a PeftModel and no ``ref_model`` it uses the adapter-disabled base as the reference,
so no second copy of the model is held.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from fedrai.safety.cai.engine import CAIOutcome

log = logging.getLogger(__name__)


def dpo_pairs(outcomes: Iterable[CAIOutcome], include_refusals: bool = True) -> list[dict[str, Any]]:
    """``{prompt, chosen, rejected}`` conversational rows: the CAI answer preferred over the original.

    Only rows whose original was replaced (a model revision, or a fallback refusal when
    ``include_refusals``) make a pair; kept and dropped rows carry no preference.
    """
    statuses = {"revised", "refusal"} if include_refusals else {"revised"}
    pairs: list[dict[str, Any]] = []
    for o in outcomes:
        if o.status not in statuses or not o.final or not o.original.strip() or o.final == o.original:
            continue
        pairs.append(
            {
                "prompt": [dict(m) for m in o.conversation],
                "chosen": [{"role": "assistant", "content": o.final}],
                "rejected": [{"role": "assistant", "content": o.original}],
            }
        )
    return pairs


def train_dpo(
    model: Any,
    tokenizer: Any,
    pairs: list[dict[str, Any]],
    *,
    steps: int,
    lr: float,
    beta: float,
    seed: int,
    batch_size: int = 2,
    max_length: int = 512,
) -> dict[str, float]:
    """Train the model's LoRA adapter in place for ``steps`` DPO steps; returns loss and cost numbers."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    if steps <= 0 or not pairs:
        return {"dpo.steps": 0.0, "dpo.pairs": float(len(pairs)), "dpo.seconds": 0.0}
    started = time.perf_counter()
    losses: list[float] = []

    class _Losses(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    on_cpu = next(model.parameters()).device.type == "cpu"
    # trl turns activation checkpointing on by default, which would persist on the shared global
    # model; keep whatever the model was loaded with (model.gradient_checkpointing) instead.
    checkpointing = bool(getattr(model, "is_activation_checkpointing", False))
    was_training = bool(getattr(model, "training", False))
    with tempfile.TemporaryDirectory(prefix="fedrai-dpo-") as out:
        args = DPOConfig(
            output_dir=out,
            max_steps=steps,
            per_device_train_batch_size=max(1, min(batch_size, len(pairs))),
            learning_rate=lr,
            lr_scheduler_type="constant",
            warmup_steps=0,
            beta=beta,
            seed=seed,
            data_seed=seed,
            max_length=max_length,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=on_cpu,
            disable_tqdm=True,
            dataloader_num_workers=0,
            activation_checkpointing=checkpointing,
        )
        trainer = DPOTrainer(
            model=model,
            ref_model=None,
            args=args,
            train_dataset=Dataset.from_list(pairs),
            processing_class=tokenizer,
            callbacks=[_Losses()],
        )
        trainer.remove_callback(PrinterCallback)  # metrics are returned, not printed per step
        if trainer.model is not model and getattr(trainer.model, "base_model", None) is not getattr(
            model, "base_model", None
        ):
            raise RuntimeError("DPOTrainer wrapped the model in a new adapter; expected in-place training")
        try:
            trainer.train()
        finally:
            # trl adds a frozen copy of the adapter named "ref" as the DPO reference; the server
            # trains every round, and a second DPOTrainer refuses an existing "ref" adapter.
            if "ref" in getattr(model, "peft_config", {}):
                model.delete_adapter("ref")
    model.train(was_training)
    finite = [x for x in losses if math.isfinite(x)]
    return {
        "dpo.steps": float(steps),
        "dpo.pairs": float(len(pairs)),
        "dpo.loss_first": finite[0] if finite else math.nan,
        "dpo.loss_mean": sum(finite) / len(finite) if finite else math.nan,
        "dpo.loss_last": finite[-1] if finite else math.nan,
        "dpo.seconds": time.perf_counter() - started,
    }
