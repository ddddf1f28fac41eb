"""Train the embedded filter's head (`fedrai safety train-filter`) and report held-out figures.

The pieces live beside it: the labelled data (:mod:`fedrai.safety.labelled`, the default set in
:mod:`fedrai.safety.default_labelled`, its refusals in :mod:`fedrai.safety.refusal_templates`),
fitting and thresholds (:mod:`fedrai.safety.head_fitting`) and the embedding cache
(:mod:`fedrai.safety.embedding_cache`). This module runs them in order and writes the head.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from fedrai.safety.default_labelled import DEFAULT_DATA_OPTIONS, default_examples
from fedrai.safety.embedding_cache import CachedEncoder, encoder_tag
from fedrai.safety.filters.embedded import FEATURES, MODES, STACKED, Encoder, Head, LinearHead, embed_features
from fedrai.safety.head_fitting import evaluate, fit_mode, fit_projections
from fedrai.safety.labelled import Example, load_labelled_jsonl


def train_filter(
    out_path: str | Path,
    *,
    data: str | Path | None = None,
    encoder: Encoder | None = None,
    encoder_ref: str = "embedded:minilm-l6-v2",
    max_seq_length: int = 128,
    encoder_dtype: str = "bfloat16",
    seed: int = 0,
    n_benign: int = 3000,
    max_fpr: float = 0.03,
    base_head: str | Path | None = None,
    embed_cache: str | Path | None = None,
    in_context_features: str = "auto",
    safe_answer_weight: float = 1.0,
    data_options: dict[str, Any] | None = None,
    examples: list[Example] | None = None,
    cs: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0),
    log=print,
) -> dict[str, Any]:
    """Train a head file at ``out_path`` (+ ``<out_path>.json`` record); return the record.

    ``examples`` (already built rows, e.g. ``fedrai.safety.filter_data.filter_examples``) take
    precedence over ``data``. ``data`` is a labelled JSONL (see :func:`load_labelled_jsonl`); without it the default
    offline sources are used. Modes the user data cannot train (no rows with both labels) keep
    the heads of ``base_head`` (default: the shipped head).

    ``in_context_features``: ``"auto"`` uses the stacked features (``STACKED``) when the data
    has prompt-only rows of both labels and refusal rows (the default data does), else the
    linear ``FEATURES["response_in_context"]``; or name a feature string.
    ``encoder_dtype`` is the encoder config the head will be served with (recorded in the head;
    the filter warns when it runs another): the head is fitted, thresholded and validated on
    embeddings computed that way.
    ``data_options`` are :func:`default_examples` keywords (default ``DEFAULT_DATA_OPTIONS``;
    recorded in the head so that the benchmark rebuilds the same splits).
    ``safe_answer_weight`` multiplies the training weight of ``harmful_safe_answer`` rows (safe
    answers to harmful prompts that are not refusals, mostly made-up lyrics and book passages
    answering HarmBench copyright requests); 1 (no extra weight) gave more val recall than the
    earlier 10 (MADE.md beside the shipped head).
    """
    from fedrai.safety.filters.embedded import SentenceEncoder

    t0 = time.time()
    data_options = dict(DEFAULT_DATA_OPTIONS if data_options is None else data_options)
    if examples is None:
        examples = (
            load_labelled_jsonl(data, seed) if data else default_examples(seed, n_benign, **data_options)
        )
    if encoder is None:
        encoder = SentenceEncoder(encoder_ref, max_seq_length, dtype=encoder_dtype)
    tag = encoder_tag(encoder_ref, max_seq_length, encoder_dtype)
    cached = CachedEncoder(encoder, embed_cache, tag)  # modes share texts
    encoder = cached
    heads: dict[str, LinearHead] = {}
    record: dict[str, Any] = {
        "encoder": encoder_ref,
        "max_seq_length": max_seq_length,
        "encoder_dtype": encoder_dtype,
        "seed": seed,
        "max_val_fpr": max_fpr,
        "safe_answer_weight": safe_answer_weight,
        "n_benign": n_benign,
        "data_options": {} if data else data_options,
        "data": str(data) if data else "default offline sources (see fedrai/safety/train_head.py docstring)",
        "operating_point": "bias shifted so the val-chosen threshold is probability 0.5",
        "modes": {},
    }
    stackable = len({e.label for e in examples if e.response is None and e.split == "train"}) == 2 and any(
        e.set in ("refusal", "benign_refusal") and e.split == "train" for e in examples
    )
    ric_kind = (
        (STACKED if stackable else FEATURES["response_in_context"])
        if in_context_features == "auto"
        else (in_context_features)
    )
    record["modes_features"] = {**FEATURES, "response_in_context": ric_kind}
    for mode in MODES:
        kind = ric_kind if mode == "response_in_context" else FEATURES[mode]
        rows = [e for e in examples if (e.response is None) == (mode == "prompt")]
        by = {s: [e for e in rows if e.split == s] for s in ("train", "val", "test")}
        if any(len({e.label for e in by[s]}) < 2 for s in ("train", "val")):
            log(f"{mode}: not enough labelled rows of both classes; keeping the base head")
            continue
        stacked = any(n in ("hp", "cr") for n in kind.replace("*", ",").split(","))
        proj = fit_projections(encoder, examples, by["train"], seed) if stacked else {}
        x, y, sets = {}, {}, {}
        for s, part in by.items():
            if not part:
                continue
            x[s] = embed_features(
                encoder,
                kind,
                [e.prompt for e in part],
                [e.response for e in part] if mode != "prompt" else [e.prompt for e in part],
                proj,
            )
            y[s] = np.array([e.label for e in part])
            sets[s] = [e.set for e in part]
        head, fit_info = fit_mode(
            x, y, sets, kind, max_fpr, seed, {"harmful_safe_answer": safe_answer_weight}, cs
        )
        head.proj = proj
        heads[mode] = head
        info: dict[str, Any] = {
            "features": kind,
            **fit_info,
            "sizes": {
                s: {k: sum(1 for e in part if e.set == k) for k in sorted({e.set for e in part})}
                for s, part in by.items()
            },
        }
        info["val"] = evaluate(head, x["val"], y["val"], sets["val"])
        if "test" in x:
            info["test"] = evaluate(head, x["test"], y["test"], sets["test"])
        record["modes"][mode] = info
        log(
            f"{mode}: val {_brief(info['val'])}"
            + (f" | test {_brief(info['test'])}" if "test" in info else "")
        )
    if len(heads) < len(MODES):
        base = Head.load(base_head)
        for mode in MODES:
            if mode not in heads and mode in base.heads:
                heads[mode] = base.heads[mode]
                record["modes"][mode] = {"kept_from": str(base_head or "shipped default head")}
    cached.save()
    record["train_seconds"] = round(time.time() - t0, 1)
    out_path = Path(out_path)
    Head(heads, {k: v for k, v in record.items() if k != "modes"}).save(out_path)
    out_path.with_suffix(".json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return record


def _brief(m: dict[str, Any]) -> str:
    return f"P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} AUC={m['auc']:.3f}"


def examples_to_dicts(examples: list[Example]) -> list[dict[str, Any]]:
    return [asdict(e) for e in examples]
