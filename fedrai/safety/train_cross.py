"""Fine-tune the cross-encoder filter (`fedrai safety train-filter --design cross_encoder`).

Rows are the filter's labelled examples (:mod:`fedrai.safety.filter_data`): pair rows train the
``response_in_context`` input, prompt-only rows the ``prompt`` input, and pair rows again (a share)
the ``response`` input (label: harmful and complied). Training rows are sampled with a cap per
(source, set), so that 3,000 benign instructions do not drown 50 harm-naming refusals, then trained
for ``epochs`` with AdamW on the LoRA and classifier weights. The threshold per mode is chosen on
val (lowest threshold whose flag rate on each safe set of val is <= ``max_fpr``) and stored in the
meta, so 0.5 is the operating point.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from fedrai.safety.filters.cross_encoder import CrossEncoder, build_model, format_inputs
from fedrai.safety.labelled import Example

MIN_SET_ROWS = 30
SAFE_GUARDED = (
    "benign",
    "refusal",
    "benign_refusal",
    "safe_alarming",
    "borderline",
    "benign_prompt",
    "safe_alarming_prompt",
    "borderline_prompt",
)


def _inputs(examples: list[Example], response_share: float, rng: random.Random) -> list[tuple[str, Example]]:
    out: list[tuple[str, Example]] = []
    for e in examples:
        if e.response is None:
            out.append(("prompt", e))
        else:
            out.append(("response_in_context", e))
            if rng.random() < response_share:
                out.append(("response", e))
    return out


def _label(mode: str, e: Example) -> int:
    if mode == "response":
        return int(e.set in ("harmful_compliant", "labelled_unsafe"))
    return e.label


def sample_rows(examples: list[Example], cap: int, rng: random.Random) -> list[Example]:
    """At most ``cap`` rows per (source, set), chosen at random (source = before the first colon)."""
    groups: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for e in examples:
        groups[(e.source.split(":", 1)[0], e.set)].append(e)
    out: list[Example] = []
    for key in sorted(groups):
        rows = groups[key]
        out += rng.sample(rows, min(cap, len(rows)))
    rng.shuffle(out)
    return out


def train_cross_encoder(
    out_dir: str | Path,
    examples: list[Example],
    *,
    base: str = "embedded:minilm-l6-v2",
    max_length: int = 128,
    epochs: int = 1,
    cap_per_group: int = 300,
    batch_size: int = 16,
    lr: float = 5e-4,
    lora_r: int = 8,
    lora_alpha: int = 16,
    response_share: float = 0.3,
    max_fpr: float = 0.03,
    seed: int = 0,
    threads: int = 1,
    log=print,
) -> dict[str, Any]:
    """Train on ``examples`` split ``train`` (thresholds on ``val``); save to ``out_dir``; return meta."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train(
            out_dir,
            examples,
            base,
            max_length,
            epochs,
            cap_per_group,
            batch_size,
            lr,
            lora_r,
            lora_alpha,
            response_share,
            max_fpr,
            seed,
            log,
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    out_dir: str | Path,
    examples: list[Example],
    base: str,
    max_length: int,
    epochs: int,
    cap_per_group: int,
    batch_size: int,
    lr: float,
    lora_r: int,
    lora_alpha: int,
    response_share: float,
    max_fpr: float,
    seed: int,
    log: Any,
) -> dict[str, Any]:
    import torch

    rng = random.Random(seed)
    t0 = time.time()
    tok, model = build_model(base, lora_r, lora_alpha, seed)
    train = _inputs(
        sample_rows([e for e in examples if e.split == "train"], cap_per_group, rng), response_share, rng
    )
    val = _inputs(
        sample_rows([e for e in examples if e.split == "val"], cap_per_group // 3, rng), response_share, rng
    )
    pos = sum(_label(m, e) for m, e in train)
    pos_weight = torch.tensor((len(train) - pos) / max(pos, 1))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps)
    )
    log(f"cross-encoder: {len(train)} train inputs ({pos} unsafe), {len(val)} val, {steps} steps")
    model.train()
    step = 0
    for _ in range(epochs):
        rng.shuffle(train)
        by_mode: dict[str, list[Example]] = defaultdict(list)
        batches: list[tuple[str, list[Example]]] = []
        for mode, e in train:  # batches of one mode each (one input format per forward pass)
            by_mode[mode].append(e)
            if len(by_mode[mode]) == batch_size:
                batches.append((mode, by_mode.pop(mode)))
        batches += [(m, rows) for m, rows in by_mode.items() if rows]
        rng.shuffle(batches)
        for mode, rows in batches:
            first, second = format_inputs(mode, [e.prompt for e in rows], [e.response for e in rows])
            enc = tok(
                first, second, truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            z = model(**enc).logits[:, 0]
            y = torch.tensor([float(_label(mode, e)) for e in rows])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y, pos_weight=pos_weight)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 20 == 0:
                log(f"step {step}/{steps} loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    meta: dict[str, Any] = {
        "base": base,
        "max_length": max_length,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "dtype": "float32",
        "epochs": epochs,
        "cap_per_group": cap_per_group,
        "response_share": response_share,
        "train_inputs": len(train),
        "seed": seed,
        "max_val_fpr": max_fpr,
        "thresholds": {},
    }
    ce = CrossEncoder(tok, model, meta)
    for mode in ("prompt", "response", "response_in_context"):
        rows = [e for m, e in val if m == mode]
        if not rows:
            continue
        z = ce.logits(mode, [e.prompt for e in rows], [e.response for e in rows])
        meta["thresholds"][mode] = choose_threshold(
            z, [e.set for e in rows], [_label(mode, e) for e in rows], max_fpr
        )
    meta["train_seconds"] = round(time.time() - t0, 1)
    ce.save(out_dir)
    log(f"saved {out_dir} ({meta['train_seconds']} s); thresholds {meta['thresholds']}")
    return meta


def split_inputs(
    examples: list[Example], cap_per_group: int, response_share: float, rng: random.Random
) -> tuple[list[tuple[str, Example]], list[tuple[str, Example]]]:
    """(train, val) inputs: rows sampled per (source, set), each paired with the mode it trains."""
    train = _inputs(
        sample_rows([e for e in examples if e.split == "train"], cap_per_group, rng), response_share, rng
    )
    val = _inputs(
        sample_rows([e for e in examples if e.split == "val"], cap_per_group // 3, rng), response_share, rng
    )
    return train, val


def val_thresholds(ce: CrossEncoder, val: list[tuple[str, Example]], max_fpr: float) -> dict[str, float]:
    """The threshold per mode, chosen on the val inputs (see :func:`choose_threshold`)."""
    out: dict[str, float] = {}
    for mode in ("prompt", "response", "response_in_context"):
        rows = [e for m, e in val if m == mode]
        if rows:
            z = ce.logits(mode, [e.prompt for e in rows], [e.response for e in rows])
            out[mode] = choose_threshold(z, [e.set for e in rows], [_label(mode, e) for e in rows], max_fpr)
    return out


def rethreshold(
    model_dir: str | Path, examples: list[Example], max_fpr: float, seed: int = 0
) -> dict[str, float]:
    """Re-choose a saved model's thresholds on the same val inputs it was trained with; saves meta."""
    ce = CrossEncoder.load(model_dir)
    meta = ce.meta
    _, val = split_inputs(
        examples, int(meta["cap_per_group"]), float(meta.get("response_share", 0.3)), random.Random(seed)
    )
    meta["thresholds"] = val_thresholds(ce, val, max_fpr)
    meta["max_val_fpr"] = max_fpr
    (Path(model_dir) / "meta.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return meta["thresholds"]


def choose_threshold(logits: list[float], sets: list[str], labels: list[int], max_fpr: float) -> float:
    """Probability threshold: the lowest whose flag rate on each guarded safe set (``SAFE_GUARDED``:
    refusals, benign and safe-but-alarming rows; not the noisy "safe answers to harmful prompts",
    mostly made-up lyrics) with at least ``MIN_SET_ROWS`` val rows is <= ``max_fpr``, and so is the
    pooled rate over all guarded rows (on a 5-row set, 3% would forbid any false positive)."""
    probs = [1 / (1 + math.exp(-max(-50.0, min(50.0, z)))) for z in logits]
    safe: dict[str, list[float]] = defaultdict(list)
    for p, s, y in zip(probs, sets, labels, strict=True):
        if y == 0 and s in SAFE_GUARDED:
            safe[s].append(p)
    pooled = [p for ps in safe.values() for p in ps]
    for t in sorted({0.5, *probs}):
        if sum(p >= t for p in pooled) <= max_fpr * len(pooled) and all(
            sum(p >= t for p in ps) <= max_fpr * len(ps) for ps in safe.values() if len(ps) >= MIN_SET_ROWS
        ):
            return float(min(max(t, 1e-4), 1 - 1e-4))
    return 0.5
