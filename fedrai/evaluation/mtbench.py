"""MT-Bench score (1-10): the model answers MT-Bench's two-turn questions, an LLM judge grades them.

Single-answer grading as MT-Bench (Zheng et al., FastChat ``llm_judge``) defines it: the judge sees
one question and the model's answer (``single-v1``), or the whole two-turn conversation with the
second answer to grade (``single-v1-multi-turn``); math, reasoning and coding questions that carry
a reference answer are graded against it (``single-math-v1`` / ``-multi-turn``). The judge explains,
then writes ``[[rating]]``; the rating is read with MT-Bench's patterns (``[[x]]``, else ``[x]``).
``mtbench.score`` is the mean of every valid rating over both turns (MT-Bench's overall score).

The judge is any OpenAI-compatible endpoint (:class:`~fedrai.chat_endpoint.ChatEndpoint`). A
judgement that times out, fails or cannot be parsed is counted (``mtbench.failed``,
``mtbench.timeouts``, ``mtbench.unparseable``) and left out of the mean: never a crash.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedrai.chat_endpoint import ChatEndpoint, Conversation, EndpointError
from fedrai.data.sources import BadRow, Record, read_records

if TYPE_CHECKING:  # pragma: no cover
    from fedrai.config import EvalConfig

# Categories MT-Bench grades against a reference answer.
REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})

_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")

_FORMAT = (
    "After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    'following this format: "[[rating]]", for example: "Rating: [[5]]".'
)
_GENERAL = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider factors such as "
    "the helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response."
)
_CORRECTNESS = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider correctness and "
    "helpfulness. You will be given a reference answer and the assistant's answer."
)
_BEGIN_GENERAL = "Begin your evaluation by providing a short explanation. Be as objective as possible."
_BEGIN_REFERENCE = (
    "Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and "
    "correct any mistakes. Be as objective as possible."
)
_SECOND = "Your evaluation should focus on the assistant's answer to the second user question."


@dataclass(frozen=True)
class MTBenchQuestion:
    id: str
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] = ()


def load_mtbench_questions(source: str) -> list[MTBenchQuestion]:
    """MT-Bench ``question.jsonl`` (``question_id``, ``category``, ``turns``, optional ``reference``),
    read by :mod:`fedrai.data.sources`; a bad line is an error naming the file and line."""
    return read_records(source, _question, what="MT-Bench questions", suffixes=(".jsonl",)).items


def _question(rec: Record) -> MTBenchQuestion:
    value = rec.value if isinstance(rec.value, dict) else {}
    turns = value.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t for t in turns):
        raise BadRow("bad_turns", "needs 'turns', a non-empty list of texts")
    ref = value.get("reference") or []
    return MTBenchQuestion(
        id=str(value.get("question_id", rec.row_id.rsplit(":", 1)[-1])),
        category=str(value.get("category", "")),
        turns=tuple(turns),
        reference=tuple(str(r) for r in ref) if isinstance(ref, list) else (),
    )


def judge_messages(question: MTBenchQuestion, answers: Sequence[str], turn: int) -> Conversation:
    """The judge's prompt for ``turn`` (1 or 2) of ``question`` given the model's ``answers``."""
    use_ref = question.category in REFERENCE_CATEGORIES and len(question.reference) >= turn
    if turn == 1:
        instruction = (
            f"{_CORRECTNESS if use_ref else _GENERAL} {_BEGIN_REFERENCE if use_ref else _BEGIN_GENERAL}"
        )
        body = f"[Instruction]\n{instruction} {_FORMAT}\n\n[Question]\n{question.turns[0]}\n\n"
        if use_ref:
            body += (
                f"[The Start of Reference Answer]\n{question.reference[0]}\n[The End of Reference Answer]\n\n"
            )
        body += f"[The Start of Assistant's Answer]\n{answers[0]}\n[The End of Assistant's Answer]"
        return [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": body},
        ]
    system = (
        f"{_CORRECTNESS if use_ref else _GENERAL} {_SECOND} "
        f"{_BEGIN_REFERENCE if use_ref else _BEGIN_GENERAL} {_FORMAT}\n\n"
    )
    body = ""
    if use_ref:
        body += (
            "<|The Start of Reference Answer|>\n\n"
            f"### User:\n{question.turns[0]}\n\n### Reference answer:\n{question.reference[0]}\n\n"
            f"### User:\n{question.turns[1]}\n\n### Reference answer:\n{question.reference[1]}\n\n"
            "<|The End of Reference Answer|>\n\n\n"
        )
    body += (
        "<|The Start of Assistant A's Conversation with User|>\n\n"
        f"### User:\n{question.turns[0]}\n\n### Assistant A:\n{answers[0]}\n\n"
        f"### User:\n{question.turns[1]}\n\n### Assistant A:\n{answers[1]}\n\n"
        "<|The End of Assistant A's Conversation with User|>"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def parse_rating(judgement: str) -> float | None:
    """The ``[[rating]]`` (else ``[rating]``) of a judgement, if it is a number from 1 to 10."""
    match = _RATING.search(judgement) or _RATING_BACKUP.search(judgement)
    if match is None:
        return None
    value = float(match.group(1))
    return value if 1.0 <= value <= 10.0 else None


def build_judge(ev: EvalConfig) -> ChatEndpoint:
    """The judge endpoint of ``eval.mtbench_judge_*`` (key from the named environment variable)."""
    return ChatEndpoint(
        ev.mtbench_judge_url,
        ev.mtbench_judge_model,
        max_new_tokens=ev.mtbench_judge_max_tokens,
        timeout_s=ev.mtbench_judge_timeout_s,
        retries=ev.mtbench_judge_retries,
        concurrency=ev.mtbench_judge_concurrency,
        api_key=os.environ.get(ev.mtbench_judge_api_key_env, ""),
    )


def answer_questions(
    model: Any,
    tokenizer: Any,
    questions: Sequence[MTBenchQuestion],
    *,
    turns: int,
    max_new_tokens: int,
    batch_size: int,
) -> list[list[str]]:
    """The model's greedy answers, turn by turn: turn 2 sees the question, its own answer, then turn 2."""
    from fedrai.evaluation.generation import generate

    convs: list[Conversation] = [[{"role": "user", "content": q.turns[0]}] for q in questions]
    answers: list[list[str]] = [[] for _ in questions]
    for turn in range(min(turns, 2)):
        live = [i for i, q in enumerate(questions) if len(q.turns) > turn]
        if turn:
            for i in live:
                convs[i] = [
                    *convs[i],
                    {"role": "assistant", "content": answers[i][0]},
                    {"role": "user", "content": questions[i].turns[turn]},
                ]
        outs = generate(
            model, tokenizer, [convs[i] for i in live], max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        for i, text in zip(live, outs, strict=True):
            answers[i].append(text)
    return answers


def judge_answers(
    judge: ChatEndpoint, questions: Sequence[MTBenchQuestion], answers: Sequence[Sequence[str]]
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Grade every answered turn; ``mtbench.*`` metrics and one record per judged turn."""
    start = time.perf_counter()
    before = {k: getattr(judge, k) for k in ("timeouts", "retried")}
    jobs = [(q, a, t) for q, a in zip(questions, answers, strict=True) for t in range(1, len(a) + 1)]
    replies = judge.complete_each([judge_messages(q, a, t) for q, a, t in jobs])
    ratings: dict[int, list[float]] = {1: [], 2: []}
    failed = unparseable = 0
    records = []
    for (q, a, t), reply in zip(jobs, replies, strict=True):
        rating = None
        if isinstance(reply, EndpointError):
            failed += 1
        else:
            rating = parse_rating(reply)
            if rating is None:
                unparseable += 1
            else:
                ratings[t].append(rating)
        records.append(
            {
                "set": "mtbench",
                "question_id": q.id,
                "category": q.category,
                "turn": t,
                "prompt": q.turns[t - 1],
                "response": a[t - 1],
                "rating": rating,
                "judgement": str(reply),
            }
        )
    every = ratings[1] + ratings[2]
    metrics: dict[str, float] = {"mtbench.score": _mean(every)}
    for t in (1, 2):
        if ratings[t]:
            metrics[f"mtbench.score_turn{t}"] = _mean(ratings[t])
    metrics.update(
        {
            "mtbench.n": len(questions),
            "mtbench.judgements": len(jobs),
            "mtbench.judged": len(every),
            "mtbench.unparseable": unparseable,
            "mtbench.failed": failed,
            "mtbench.timeouts": judge.timeouts - before["timeouts"],
            "mtbench.retries": judge.retried - before["retried"],
            "mtbench.judge_seconds": round(time.perf_counter() - start, 3),
        }
    )
    return metrics, records


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
