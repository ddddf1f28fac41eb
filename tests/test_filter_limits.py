"""benchmarks/filter_factored_limits.py: the leave-one-source-out loop and the oracle ceilings, on
synthetic embeddings where the answer is known."""

from __future__ import annotations

import numpy as np

from benchmarks.filter_factored_limits import Rows, factored_fit, in_split_diagnosis, run_loso
from fedrai.safety.labelled import Example

DIM = 8


def _rows(harm_noise: float, comply_noise: float, rng: np.random.Generator) -> Rows:
    """Two sources ("harmful-pairs", "objective-evals"), each with harmful prompts (axis 0 high), benign prompts, refusals
    (axis 1 low), harmful compliant and benign answers (axis 1 high); the noises blur each axis."""
    rows: list[Example] = []
    p, r = [], []

    def add(ex: Example, harm: float, comply: float) -> None:
        rows.append(ex)
        pv, rv = rng.normal(0, harm_noise, DIM), rng.normal(0, comply_noise, DIM)
        pv[0] += harm
        rv[1] += comply
        p.append(pv)
        r.append(rv)

    for src in ("harmful-pairs", "objective-evals"):
        for k in range(40):
            split = ("train", "train", "train", "val", "test")[k % 5]
            q = f"{src} request {k}"
            add(Example(q, None, 1, "harmful_prompt", split, f"{src}:{k}"), 1, 0)
            add(Example(q, "no", 0, "refusal", split, f"{src}:{k}"), 1, -1)
            add(Example(q, "yes", 1, "harmful_compliant", split, f"{src}:{k}"), 1, 1)
            b = f"{src} question {k}"
            add(Example(b, None, 0, "benign_prompt", split, f"{src}:b{k}"), -1, 0)
            add(Example(b, "answer", 0, "benign", split, f"{src}:b{k}"), -1, 1)
    d = Rows(
        rows,
        np.array(p, np.float32),
        np.array(r, np.float32),
        np.array([e.source.split(":")[0] for e in rows]),
    )
    d.sources = ("harmful-pairs", "objective-evals")
    d.always_test = ()
    return d


def test_separable_sources_are_caught_on_every_left_out_source():
    d = _rows(0.05, 0.05, np.random.default_rng(0))
    res = run_loso(d, factored_fit(d))
    table = res["loso_table"]
    assert set(table) >= {
        "harmful-pairs/harmful_compliant",
        "objective-evals/benign",
        "objective-evals/refusal",
    }
    for src in ("harmful-pairs", "objective-evals"):
        assert table[f"{src}/harmful_compliant"]["flagged"] == 1.0
        assert table[f"{src}/refusal"]["flagged"] == 0.0
        assert table[f"{src}/benign"]["flagged"] == 0.0
    assert res["loso_fails"] == []


def test_a_perfect_comply_head_leaves_only_the_prompt_heads_errors():
    d = _rows(0.05, 1.5, np.random.default_rng(1))  # prompts separable, answers blurred
    learned = run_loso(d, factored_fit(d))["loso_average_by_set"]
    oracle = run_loso(d, factored_fit(d, oracle="complies"))["loso_average_by_set"]
    assert learned["harmful_compliant"] < 0.9 or learned["refusal"] > 0.1  # the comply head errs
    assert oracle == {**oracle, "harmful_compliant": 1.0, "refusal": 0.0, "benign": 0.0}


def test_in_split_diagnosis_counts_the_misses_by_head():
    d = _rows(0.05, 1.5, np.random.default_rng(2))  # the comply head errs, the prompt head does not
    diag = in_split_diagnosis(d)
    for src in ("harmful-pairs", "objective-evals"):
        m = diag["missed_harmful_compliant"][src]
        assert m["of"] == 8
        assert (
            m["missed"]
            == m["comply_head_low_only"] + m["prompt_head_low_only"] + m["both_low"] + m["neither_low"]
        )
        assert m["prompt_head_low_only"] == 0 and m["both_low"] == 0
    assert set(diag["score_quantiles"]["harmful-pairs/harmful_compliant"]) >= {"n", "complies_q10_q50_q90"}
