"""HHH alignment: loading BIG-bench task files, the multiple-choice grade on known log-probs, the
log-likelihood scorer on a tiny model, and a tiny model trained to prefer the right answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fedrai.evaluation.advbench import EvalDataError
from fedrai.evaluation.hhh import (
    HHHExample,
    HHHResult,
    bigbench_argmax,
    load_hhh,
    multiple_choice_grade,
    score_hhh,
    split_dialogue,
)
from tests.conftest import write_hhh_dir


def test_split_dialogue_turns_a_transcript_into_chat_messages():
    text = "First question?\n\nAssistant:  An answer.\n\nHuman:  A follow-up?"
    assert split_dialogue(text) == [
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": "A follow-up?"},
    ]
    assert split_dialogue("Just one question?") == [{"role": "user", "content": "Just one question?"}]


def test_load_hhh_reads_parts_and_names_bad_examples(tmp_path):
    examples = load_hhh(str(write_hhh_dir(tmp_path / "hhh")))
    assert [e.part for e in examples] == ["harmless", "harmless", "helpful", "honest"]
    assert examples[0].targets == (1.0, 0.0) and examples[3].messages[-1]["content"] == "Any poem."
    bad = tmp_path / "bad" / "helpful"
    bad.mkdir(parents=True)
    (bad / "task.json").write_text(json.dumps({"examples": [{"input": "q", "target_scores": {"a": 1}}]}))
    with pytest.raises(EvalDataError, match=r"task.json: examples\[0\]: needs 'target_scores'"):
        load_hhh(str(tmp_path / "bad"))
    with pytest.raises(EvalDataError, match="missing: no such file or folder"):
        load_hhh(str(tmp_path / "missing"))
    with pytest.raises(EvalDataError, match="hhh-id: no such file or folder .*BIG-bench task.json"):
        load_hhh("hhh-id")


def test_grade_follows_bigbench_on_known_log_probs():
    scores = [[-1.0, -2.0], [-5.0, -3.0], [-2.0, -2.0]]
    targets = [[1, 0], [1, 0], [1, 0]]
    # The tie goes where BIG-bench's sha256 tie-breaking sends it, the same every time.
    tie = bigbench_argmax([-2.0, -2.0])
    assert tie == bigbench_argmax([-2.0, -2.0]) and tie in (0, 1)
    assert multiple_choice_grade(scores, targets) == pytest.approx((1 + 0 + (tie == 0)) / 3)


def test_summed_and_per_token_rules_can_disagree():
    ex = HHHExample(
        "helpful:0", "helpful", ({"role": "user", "content": "q"},), ("long", "short"), (1.0, 0.0)
    )
    other = HHHExample("honest:0", "honest", ({"role": "user", "content": "q"},), ("a", "b"), (0.0, 1.0))
    # The long right answer loses on the sum (-6 < -2) but wins per token (-1/token vs -2/token).
    result = HHHResult((ex, other), ((-6.0, -2.0), (-1.0, -3.0)), ((-1.0, -2.0), (-1.0, -3.0)), 0)
    m = result.metrics()
    assert m["hhh.accuracy"] == 0.0 and m["hhh.accuracy_per_token"] == 0.5
    assert m["hhh.helpful"] == 0.0 and m["hhh.honest"] == 0.0 and m["hhh.n"] == 2
    assert [r["picked"] for r in result.records()] == [1, 0]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    return model, tokenizer


def test_continuation_logprobs_match_a_plain_forward_pass(tiny):
    from fedrai.evaluation.generation import continuation_logprobs, render_prompt

    model, tok = tiny
    convs = [[{"role": "user", "content": "How do I bake bread?"}], [{"role": "user", "content": "Hi"}]]
    answers = ["Mix flour and water.", "Paris is the capital of France, rhymes with grace."]
    batched = continuation_logprobs(model, tok, convs, answers, batch_size=2)
    for conv, answer, got in zip(convs, answers, batched, strict=True):
        ctx = tok(render_prompt(tok, conv), add_special_tokens=False)["input_ids"]
        ans = tok(answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ctx + ans])).logits[0]
        logp = torch.log_softmax(logits.float(), -1)
        expected = sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(ans))
        assert got.tokens == len(ans) and not got.truncated
        assert got.logprob == pytest.approx(expected, abs=1e-4)
    short = continuation_logprobs(model, tok, convs[:1], answers[:1], batch_size=1, max_tokens=len(ans) + 4)
    assert short[0].truncated


def test_shared_context_logprobs_equal_one_pass_per_pair(tiny):
    """Running the context once and its answers on the KV cache scores what separate passes score."""
    from fedrai.evaluation.generation import continuation_logprobs, shared_context_logprobs

    model, tok = tiny
    convs = [
        [{"role": "user", "content": "How do I bake bread?"}],
        [{"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Name a capital city in Europe, please, and say why."}],
    ]
    answers = [
        ["Mix flour and water.", "I cannot help with that."],
        ["Hello! How can I help you today with anything at all?", "Hi."],
        ["Paris.", "Paris is the capital of France, rhymes with grace."],
    ]
    shared = shared_context_logprobs(model, tok, convs, answers, batch_size=2)
    for j in range(2):
        single = continuation_logprobs(model, tok, convs, [a[j] for a in answers], batch_size=1)
        for row, expected in zip(shared, single, strict=True):
            assert row[j].tokens == expected.tokens
            assert row[j].logprob == pytest.approx(expected.logprob, abs=1e-3)
    with pytest.raises(ValueError, match="same number"):
        shared_context_logprobs(model, tok, convs[:2], [["a"], ["b", "c"]], batch_size=2)


def _train_on_right_answers(model, tok, examples: list[HHHExample], steps: int) -> None:
    from fedrai.data import Row
    from fedrai.data.formatting import collate, tokenize_row

    rows = [
        Row(
            id=e.id,
            messages=list(e.messages),
            response=e.choices[e.targets.index(1.0)],
            origin="benign",
            group="g",
        )
        for e in examples
    ]
    batch = collate([tokenize_row(tok, r, 256) for r in rows], tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


def test_a_tiny_model_trained_on_the_right_answers_prefers_them(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    examples = load_hhh(str(write_hhh_dir(tmp_path / "hhh")))
    before = score_hhh(model, tok, examples, batch_size=4)
    torch.manual_seed(0)
    _train_on_right_answers(model, tok, examples, steps=30)
    after = score_hhh(model, tok, examples, batch_size=4)
    m = after.metrics()
    assert m["hhh.accuracy"] == 1.0 and m["hhh.accuracy_per_token"] == 1.0
    assert {k: m[k] for k in ("hhh.harmless", "hhh.helpful", "hhh.honest")} == {
        "hhh.harmless": 1.0,
        "hhh.helpful": 1.0,
        "hhh.honest": 1.0,
    }
    # Training raised the right answers' likelihood: the margin over the wrong one grew everywhere.
    for b, a in zip(before.logprobs, after.logprobs, strict=True):
        assert a[0] - a[1] > b[0] - b[1]
    assert not math.isnan(before.metrics()["hhh.accuracy"])
    # A model with a short context window: dialogues are cut to fit it, and counted.
    model.config.max_position_embeddings = 24
    assert score_hhh(model, tok, examples, batch_size=4).metrics()["hhh.truncated"] > 0


def test_server_evaluator_scores_hhh_per_round_subset_and_all_at_the_end(tiny, tmp_path):
    from fedrai.config import ExperimentConfig
    from fedrai.evaluation.server_eval import ServerEvaluator

    model, tok = tiny
    cfg = ExperimentConfig.from_dict(
        {
            "seed": 1,
            "eval": {
                "advbench_per_round": 0,
                "advbench_final": 0,
                "benign_per_round": 0,
                "benign_final": 0,
                "hhh_source": str(write_hhh_dir(tmp_path / "hhh")),
                "hhh_per_round": 2,
                "hhh_final": 221,
                "batch_size": 3,
            },
        }
    )
    ev = ServerEvaluator(cfg, tok, [])
    per_round = ev.evaluate(model, 1)
    assert per_round["hhh.n"] == 2 and 0.0 <= per_round["hhh.accuracy"] <= 1.0
    final = ev.evaluate(model, 2, final=True)
    assert final["final.hhh.n"] == 4
    assert {"final.hhh.accuracy", "final.hhh.accuracy_per_token", "final.hhh.harmless"} <= set(final)
    assert sum(r["set"] == "hhh" for r in ev.records()) == 4
