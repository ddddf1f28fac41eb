"""Everyday how-to rows: benign requests in the harmful sources' phrasing, eval families held out."""

from __future__ import annotations

import pytest

from fedrai.data.everyday import EVAL_FAMILIES, FAMILIES, everyday_rows


def test_rows_are_deterministic_labelled_and_split_by_family() -> None:
    train, held = everyday_rows("train", 0), everyday_rows("eval", 0)
    assert train == everyday_rows("train", 0) and train and held
    assert {r["family"] for r in held} == set(EVAL_FAMILIES) and not {
        r["family"] for r in train
    } & EVAL_FAMILIES
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert all(
        r["licence"] == "Apache-2.0" and r["source"].startswith("template:everyday:") for r in train + held
    )
    assert len(train) + len(held) == sum(len(v) for v in FAMILIES.values()) * 8
    with pytest.raises(ValueError, match="split"):
        everyday_rows("test")  # type: ignore[arg-type]


def test_filter_examples_tag_everyday_rows_and_hold_out_eval_families() -> None:
    from fedrai.safety.filter_data import everyday_examples, source_of

    ex = everyday_examples(0)
    assert {source_of(e) for e in ex} == {"everyday"} and all(e.label == 0 for e in ex)
    held = [e for e in ex if e.split == "heldout"]
    assert held and all(e.source.split(":")[1] in EVAL_FAMILIES for e in held)
    assert {e.split for e in ex if e.source.split(":")[1] not in EVAL_FAMILIES} <= {"train", "val", "test"}
