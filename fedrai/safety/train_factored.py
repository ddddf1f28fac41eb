"""Train the factored filter (`fedrai safety train-filter --design factored`).

Rows are the tagged filter data (:func:`fedrai.safety.filter_data.filter_examples`); each head
learns from the rows that carry its label:

* ``prompt_harm``: prompt-only rows (harmful prompts of HarmBench, StrongREJECT, harmful-pairs,
  objective evals and the contrast ``harmful`` families vs instructlab prompts and the contrast
  safe-but-alarming and borderline prompts).
* ``complies``: pair rows by what the answer does: complied (benign answers, harmful compliant
  answers, answers to safe-but-alarming and borderline questions) vs not (template and human
  refusals, harm-naming refusals, refusals to benign prompts, and pyrit's ``harmful_safe_answer``
  rows: answers to harmful requests that do not deliver, so "not complied" with the harm).
* ``response_harm`` (optional): harmful compliant answers vs every other answer.

Weights: every *set* gets the same total weight within its class (the 3000 instructlab prompts
would otherwise drown the few hundred safe-but-alarming ones, and the vocabulary of the biggest
set would decide). Thresholds: per mode, the lowest val threshold with flag rate <= ``max_fpr`` on
every safe set (as the embedded head), stored in the head and mapped to probability 0.5.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fedrai.safety.embedding_cache import CachedEncoder, encoder_tag
from fedrai.safety.filters.embedded import Encoder, LinearHead
from fedrai.safety.filters.factored import FactoredHead
from fedrai.safety.labelled import Example

COMPLIED_SETS = ("benign", "harmful_compliant", "safe_alarming", "borderline")
NOT_COMPLIED_SETS = ("refusal", "benign_refusal", "harmful_safe_answer")
GUARDED = {
    "response_in_context": ("benign", "refusal", "benign_refusal", "safe_alarming", "borderline"),
    "prompt": ("benign_prompt", "safe_alarming_prompt", "borderline_prompt"),
}


def set_balanced_weights(sets: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample weights: each set has equal total weight within its class; the classes are equal."""
    w = np.zeros(len(y), dtype=np.float64)
    for c in (0, 1):
        names = sorted(set(sets[y == c].tolist()))
        for s in names:
            m = (sets == s) & (y == c)
            w[m] = 1.0 / (m.sum() * len(names))
    return w * len(y) / w.sum()


def fit_logistic(
    x: np.ndarray, y: np.ndarray, sets: np.ndarray, features: str, c: float, seed: int
) -> LinearHead:
    """A logistic head on ``x`` with set-balanced weights."""
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        raise ValueError(f"factored head ({features}): training rows of one class only; need both")
    clf = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    clf.fit(x, y, sample_weight=set_balanced_weights(sets, y))
    return LinearHead(features, clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


def choose_threshold(
    scores: np.ndarray, sets: np.ndarray, labels: np.ndarray, guarded: tuple[str, ...], max_fpr: float
) -> float:
    """Lowest threshold with flag rate <= ``max_fpr`` on each guarded safe set present (midway to
    the next score down); 0.5 if none is present or none reaches it."""
    present = [s for s in guarded if np.any((sets == s) & (labels == 0))]
    if not present:
        return 0.5
    for t in np.unique(scores):  # ascending
        if all(np.mean(scores[(sets == s) & (labels == 0)] >= t) <= max_fpr for s in present):
            below = scores[scores < t]
            return float((t + below.max()) / 2) if len(below) else float(t)
    return 0.5


class EmbeddedRows:
    """Prompt and response embeddings of a list of rows (one encoder pass over distinct texts)."""

    def __init__(self, encoder: Encoder, rows: list[Example]) -> None:
        texts = [e.prompt for e in rows] + [e.response or e.prompt for e in rows]
        vecs = encoder.encode(texts)
        n = len(rows)
        self.p, self.r = vecs[:n], vecs[n:]
        self.sets = np.array([e.set for e in rows])
        self.labels = np.array([e.label for e in rows])
        self.prompt_only = np.array([e.response is None for e in rows])
        self.split = np.array([e.split for e in rows])


def fit_factored(
    emb: EmbeddedRows,
    *,
    train: np.ndarray,
    val: np.ndarray,
    max_fpr: float = 0.03,
    c: float = 1.0,
    response_harm: bool = False,
    seed: int = 0,
) -> FactoredHead:
    """Fit the heads on ``train`` rows (boolean mask over ``emb``) and the thresholds on ``val``."""
    m = train & emb.prompt_only
    parts = {"prompt_harm": fit_logistic(emb.p[m], emb.labels[m], emb.sets[m], "p", c, seed)}
    m = train & ~emb.prompt_only & np.isin(emb.sets, COMPLIED_SETS + NOT_COMPLIED_SETS)
    complied = np.isin(emb.sets[m], COMPLIED_SETS).astype(int)
    parts["complies"] = fit_logistic(emb.r[m], complied, emb.sets[m], "r", c, seed)
    if response_harm:
        m = train & ~emb.prompt_only
        parts["response_harm"] = fit_logistic(emb.r[m], emb.labels[m], emb.sets[m], "r", c, seed)
    head = FactoredHead(parts, {})
    for mode in ("prompt", "response_in_context"):
        v = val & (emb.prompt_only == (mode == "prompt"))
        raw = head.raw_scores(mode, emb.p[v], emb.r[v])["unsafe"] if v.any() else np.zeros(0)
        head.thresholds[mode] = choose_threshold(raw, emb.sets[v], emb.labels[v], GUARDED[mode], max_fpr)
    return head


def flag_rates(
    head: FactoredHead, emb: EmbeddedRows, mask: np.ndarray, keys: np.ndarray
) -> dict[str, dict[str, float]]:
    """{key: {n, flagged}} at the operating point, prompt-only rows in prompt mode, pairs in context."""
    out: dict[str, dict[str, float]] = {}
    for mode in ("prompt", "response_in_context"):
        m = mask & (emb.prompt_only == (mode == "prompt"))
        if not m.any():
            continue
        prob = head.predict(mode, emb.p[m], emb.r[m])
        for k in sorted(set(keys[m].tolist())):
            sel = prob[keys[m] == k]
            out[k] = {"n": int(len(sel)), "flagged": round(float(np.mean(sel >= 0.5)), 4)}
    return out


def train_factored(
    out_path: str | Path,
    examples: list[Example],
    *,
    encoder: Encoder | None = None,
    encoder_ref: str = "embedded:minilm-l6-v2",
    max_seq_length: int = 128,
    encoder_dtype: str = "float32",
    embed_cache: str | Path | None = None,
    max_fpr: float = 0.03,
    c: float = 1.0,
    response_harm: bool = False,
    seed: int = 0,
    log=print,
) -> dict[str, Any]:
    """Train a factored head file at ``out_path`` (+ ``.json`` record with val/test flag rates)."""
    from fedrai.safety.filters.embedded import SentenceEncoder

    t0 = time.time()
    if not any(e.set in COMPLIED_SETS + NOT_COMPLIED_SETS for e in examples):
        raise ValueError(
            "the factored design needs rows labelled by what the answer does (refusal / benign / "
            "harmful_compliant ...); user JSONL labels say only safe/unsafe: use --design embedded"
        )
    if encoder is None:
        encoder = SentenceEncoder(encoder_ref, max_seq_length, dtype=encoder_dtype, threads=1)
    cached = CachedEncoder(encoder, embed_cache, encoder_tag(encoder_ref, max_seq_length, encoder_dtype))
    emb = EmbeddedRows(cached, examples)
    cached.save()
    head = fit_factored(
        emb,
        train=emb.split == "train",
        val=emb.split == "val",
        max_fpr=max_fpr,
        c=c,
        response_harm=response_harm,
        seed=seed,
    )
    record: dict[str, Any] = {
        "design": "factored",
        "encoder": encoder_ref,
        "max_seq_length": max_seq_length,
        "encoder_dtype": encoder_dtype,
        "seed": seed,
        "max_val_fpr": max_fpr,
        "C": c,
        "response_harm": response_harm,
        "thresholds_raw": head.thresholds,
        "operating_point": "each mode's val-chosen raw threshold is mapped to probability 0.5",
        "sizes": {
            s: {k: int(np.sum((emb.split == s) & (emb.sets == k))) for k in sorted(set(emb.sets.tolist()))}
            for s in ("train", "val", "test")
        },
    }
    for part in ("val", "test"):
        record[part] = flag_rates(head, emb, emb.split == part, emb.sets)
        log(f"{part}: " + ", ".join(f"{k} {v['flagged']:.3f}" for k, v in record[part].items()))
    record["train_seconds"] = round(time.time() - t0, 1)
    head.meta = {k: v for k, v in record.items() if k not in ("val", "test", "sizes")}
    out_path = Path(out_path)
    head.save(out_path)
    out_path.with_suffix(".json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return record
