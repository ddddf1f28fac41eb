"""MT-Bench score: judge prompts, rating parsing, and the judge path against a fake OpenAI-compatible
server, including a judge that returns garbage and one that times out."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from fedrai.chat_endpoint import ChatEndpoint
from fedrai.evaluation.mtbench import (
    MTBenchQuestion,
    judge_answers,
    judge_messages,
    load_mtbench_questions,
    parse_rating,
)
from tests.openai_fake import FakeOpenAI

WRITING = MTBenchQuestion("81", "writing", ("Write a poem about the sea.", "Now make it rhyme."))
MATH = MTBenchQuestion("111", "math", ("What is 2+2?", "And 3+3?"), ("4", "6"))


def test_parse_rating_follows_mt_bench_patterns():
    assert parse_rating("Good answer. Rating: [[8]]") == 8.0
    assert parse_rating("Rating: [[7.5]] and later [3]") == 7.5
    assert parse_rating("Rating: [6]") == 6.0  # MT-Bench's fallback pattern
    assert parse_rating("I would give it an eight.") is None
    assert parse_rating("Rating: [[11]]") is None and parse_rating("[[0]]") is None


def test_judge_prompts_follow_the_single_answer_formats():
    one = judge_messages(WRITING, ["waves"], 1)
    assert one[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert (
        '"[[rating]]"' in one[1]["content"] and "[Question]\nWrite a poem about the sea." in one[1]["content"]
    )
    assert "[The Start of Assistant's Answer]\nwaves\n[The End of Assistant's Answer]" in one[1]["content"]
    two = judge_messages(WRITING, ["waves", "waves rhyme"], 2)
    assert "second user question" in two[0]["content"] and '"[[rating]]"' in two[0]["content"]
    assert "### User:\nNow make it rhyme.\n\n### Assistant A:\nwaves rhyme" in two[1]["content"]
    assert "Reference" not in two[1]["content"]
    ref = judge_messages(MATH, ["4", "6"], 2)
    assert "### Reference answer:\n6" in ref[1]["content"] and "correctness" in ref[0]["content"]


def test_load_mtbench_questions_names_the_bad_line(tmp_path):
    good = tmp_path / "q.jsonl"
    good.write_text(
        json.dumps({"question_id": 1, "category": "math", "turns": ["a", "b"], "reference": ["x"]}) + "\n"
    )
    (q,) = load_mtbench_questions(str(good))
    assert q.turns == ("a", "b") and q.reference == ("x",)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"turns": ["a"]}) + "\n" + json.dumps({"turns": []}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl: line 2: needs 'turns'"):
        load_mtbench_questions(str(bad))


def _rate_by_turn(messages: list[dict]) -> str:
    """A judge that gives 8 to first turns and 6 to second turns."""
    return "Fine. Rating: [[6]]" if "second user question" in messages[0]["content"] else "Rating: [[8]]"


def _judge(url: str, **kw) -> ChatEndpoint:
    kw = {"max_new_tokens": 64, "timeout_s": 2.0, "retries": 1, "backoff_s": 0.01, "api_key": "", **kw}
    return ChatEndpoint(url, "judge", **kw)


def test_judged_score_averages_both_turns():
    with FakeOpenAI(reply=_rate_by_turn) as server, _judge(server.url) as judge:
        metrics, records = judge_answers(judge, [WRITING, MATH], [["a1", "a2"], ["4", "6"]])
    assert metrics["mtbench.score"] == 7.0
    assert metrics["mtbench.score_turn1"] == 8.0 and metrics["mtbench.score_turn2"] == 6.0
    assert (
        metrics["mtbench.judged"] == 4
        and metrics["mtbench.unparseable"] == 0
        and metrics["mtbench.failed"] == 0
    )
    assert sorted((r["question_id"], r["turn"], r["rating"]) for r in records) == [
        ("111", 1, 8.0),
        ("111", 2, 6.0),
        ("81", 1, 8.0),
        ("81", 2, 6.0),
    ]
    assert all(b["temperature"] == 0.0 and b["model"] == "judge" for b in server.bodies)


def test_a_garbage_judge_is_counted_not_fatal():
    with FakeOpenAI(reply=lambda m: "I refuse to grade this.") as server, _judge(server.url) as judge:
        metrics, records = judge_answers(judge, [WRITING], [["a1", "a2"]])
    assert metrics["mtbench.unparseable"] == 2 and metrics["mtbench.judged"] == 0
    assert math.isnan(metrics["mtbench.score"]) and "mtbench.score_turn1" not in metrics
    assert [r["rating"] for r in records] == [None, None]
    # A reply that is not even a chat completion is a failed judgement, counted the same way.
    with FakeOpenAI(reply=_rate_by_turn) as server, _judge(server.url, concurrency=1) as judge:
        server.script = ["junk"]
        metrics, _ = judge_answers(judge, [WRITING], [["a1", "a2"]])
    assert (
        metrics["mtbench.failed"] == 1 and metrics["mtbench.judged"] == 1 and metrics["mtbench.score"] == 6.0
    )


def test_a_judge_that_times_out_is_retried_then_counted():
    with (
        FakeOpenAI(reply=_rate_by_turn, stall_s=0.5) as server,
        _judge(server.url, timeout_s=0.2, retries=1, concurrency=1) as judge,
    ):
        server.script = [
            "stall",
            "stall",
            "stall",
            "ok",
        ]  # turn 1: two time-outs, gives up; turn 2: stall then ok
        metrics, _ = judge_answers(judge, [WRITING], [["a1", "a2"]])
    assert metrics["mtbench.failed"] == 1 and metrics["mtbench.timeouts"] == 3
    assert metrics["mtbench.retries"] == 2 and metrics["mtbench.judged"] == 1
    assert metrics["mtbench.score"] == 6.0


def test_server_evaluator_answers_and_judges_on_the_final_model_and_every_n_rounds(
    tiny_model_dir, tmp_path, monkeypatch
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fedrai.config import ExperimentConfig
    from fedrai.evaluation.server_eval import ServerEvaluator

    questions = tmp_path / "question.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"question_id": i, "category": "writing", "turns": [f"Write poem {i}.", "Shorter."]})
            + "\n"
            for i in range(3)
        )
    )
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    with FakeOpenAI(reply=_rate_by_turn) as server:
        monkeypatch.setenv("TEST_JUDGE_KEY", "sk-test")
        cfg = ExperimentConfig.from_dict(
            {
                "eval": {
                    "advbench_per_round": 0,
                    "advbench_final": 0,
                    "benign_per_round": 0,
                    "benign_final": 0,
                    "hhh_per_round": 0,
                    "hhh_final": 0,
                    "mtbench_judge": True,
                    "mtbench_source": str(questions),
                    "mtbench_questions": 2,
                    "mtbench_every": 2,
                    "mtbench_max_new_tokens": 4,
                    "mtbench_judge_url": server.url,
                    "mtbench_judge_model": "judge-model",
                    "mtbench_judge_api_key_env": "TEST_JUDGE_KEY",
                }
            }
        )
        ev = ServerEvaluator(cfg, tok, [])
        assert "mtbench.score" not in ev.evaluate(model, 1)  # not a multiple of mtbench_every
        assert ev.evaluate(model, 2)["mtbench.score"] == 7.0
        final = ev.evaluate(model, 3, final=True)
    assert final["final.mtbench.score"] == 7.0 and final["final.mtbench.n"] == 2
    assert final["final.mtbench.judgements"] == 4
    # The second-turn judgement shows the model's own first answer, then the follow-up.
    turn2 = [b for b in server.bodies if "second user question" in b["messages"][0]["content"]]
    assert len(turn2) == 4 and re.search(r"### User:\nShorter\.", turn2[0]["messages"][1]["content"])
    assert server.headers[0].get("Authorization") == "Bearer sk-test"
    assert {b["model"] for b in server.bodies} == {"judge-model"}


def test_judge_off_by_default_touches_no_endpoint():
    from fedrai.config import ExperimentConfig

    assert ExperimentConfig.from_dict({}).eval.mtbench_judge is False
