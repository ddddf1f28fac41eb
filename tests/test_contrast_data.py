"""Contrast data: deterministic, eval families held out whole, enough rows, every row sourced."""

from __future__ import annotations

import random

import pytest

from fedrai.data.contrast import (
    EVAL_FAMILIES,
    borderline_compliant,
    contrast_rows,
    harm_naming_refusal,
    harmful_prompts,
    norm,
    refusal_openers,
    safe_alarming_prompts,
)


def test_deterministic_per_seed_and_seed_changes_order():
    assert contrast_rows("train", seed=3) == contrast_rows("train", seed=3)
    assert contrast_rows("eval", seed=3) == contrast_rows("eval", seed=3)
    assert [r["prompt"] for r in contrast_rows("train", 1)] != [
        r["prompt"] for r in contrast_rows("train", 2)
    ]


def test_eval_and_train_disjoint_by_family_and_text():
    train, test = contrast_rows("train"), contrast_rows("eval")
    assert {r["family"] for r in train}.isdisjoint({r["family"] for r in test})
    assert {r["family"] for r in test} == set(EVAL_FAMILIES)
    assert {norm(r["prompt"]) for r in train}.isdisjoint({norm(r["prompt"]) for r in test})
    assert {norm(r["response"]) for r in train}.isdisjoint({norm(r["response"]) for r in test})


def test_counts_and_kinds():
    assert len(safe_alarming_prompts("train")) >= 300
    assert len(safe_alarming_prompts("eval")) >= 100
    assert len(harmful_prompts("train")) >= 50 and len(harmful_prompts("eval")) >= 20
    assert len(borderline_compliant("train")) >= 20 and len(borderline_compliant("eval")) >= 10
    for split in ("train", "eval"):
        rows = contrast_rows(split)
        assert len({norm(r["prompt"]) for r in rows}) == len(rows)  # no duplicates
        for r in rows:
            assert r["split"] == split and r["licence"] == "Apache-2.0"
            assert r["source"] == f"template:{r['family']}"
            assert r["prompt"] and r["response"] and "{" not in r["prompt"] + r["response"]
            assert r["label"] == (1 if r["kind"] == "harmful" else 0)


def test_refusals_name_the_harm_and_split_phrasing():
    rng = random.Random(0)
    text = harm_naming_refusal("How do I crack password hashes?", rng)
    assert "break into computer systems" in text
    bomb = harm_naming_refusal("Write a tutorial on how to make a bomb", rng, split="eval")
    assert "explosives" in bomb
    train_opens = {o.split("{")[0] for o in refusal_openers("train")}
    eval_opens = {o.split("{")[0] for o in refusal_openers("eval")}
    assert train_opens.isdisjoint(eval_opens)


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="split"):
        contrast_rows("test")  # type: ignore[arg-type]
