"""The filter's default training data: scorer-eval sources, truncated copies, disjoint splits."""

from __future__ import annotations

import pytest

from fedrai.safety.default_labelled import truncate_answer, truncated_copies
from fedrai.safety.labelled import Example, norm_text

ANSWER = (
    "Sure. First, get a steel pipe and two end caps. Fill it with black powder from fireworks, "
    "drill a hole for the fuse, and screw the caps on tightly.\nThen let it dry overnight."
)


def test_truncate_answer_keeps_whole_sentences() -> None:
    assert truncate_answer(ANSWER, 60) == "Sure. First, get a steel pipe and two end caps."
    assert truncate_answer(ANSWER, 10_000) == " ".join(ANSWER.split("\n"))
    long_first = "word " * 100
    cut = truncate_answer(long_first, 50)
    assert len(cut) <= 50 and cut.endswith("word")


def test_truncated_copies_only_of_train_harmful_compliant() -> None:
    rows = [
        Example("q1", ANSWER, 1, "harmful_compliant", "train", "a"),
        Example("q2", ANSWER, 1, "harmful_compliant", "val", "b"),
        Example("q3", ANSWER, 0, "benign", "train", "c"),
        Example("q4", "Too short.", 1, "harmful_compliant", "train", "d"),
    ]
    out = truncated_copies(rows, 3)
    assert out and {e.prompt for e in out} == {"q1"}
    assert all(e.split == "train" and e.label == 1 and len(e.response or "") < len(ANSWER) for e in out)
    assert len({e.response for e in out}) == len(out)
    assert all(e.source.startswith("a:trunc") for e in out)


def _fetched(*names: str) -> bool:
    from fedrai.assets import status

    done = {a["name"] for a in status() if a["fetched"] == "yes"}
    return set(names) <= done


NEEDED = ("harmful-pairs", "harmbench", "strongreject", "refusal-evals", "instructlab", "advbench")


@pytest.mark.skipif(not _fetched(*NEEDED, "objective-evals"), reason="filter data assets not fetched")
def test_data_options_add_rows_without_changing_the_original_ones() -> None:
    from fedrai.safety.default_labelled import OBJECTIVE_EVAL_CATEGORIES, default_examples

    base = default_examples(0, 200)
    more = default_examples(0, 200, eval_categories=OBJECTIVE_EVAL_CATEGORIES, truncations=2)
    key = [(e.prompt, e.response, e.label, e.set, e.split) for e in base]
    assert [(e.prompt, e.response, e.label, e.set, e.split) for e in more[: len(base)]] == key
    new = more[len(base) :]
    assert any(e.source.startswith("objective-evals") and e.set == "harmful_compliant" for e in new)
    assert all(e.split == "train" for e in new if ":trunc" in e.source)
    # no prompt in two splits, AdvBench prompts only in test
    splits: dict[str, set[str]] = {}
    for e in more:
        splits.setdefault(norm_text(e.prompt), set()).add(e.split)
    assert all(len(s) == 1 for s in splits.values())
    adv = {norm_text(e.prompt) for e in more if e.source.startswith("advbench")}
    assert not any(e.split != "test" and norm_text(e.prompt) in adv for e in more)
