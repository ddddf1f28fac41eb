"""Evaluation prompt sets: AdvBench behaviours and benign prompts (for over-refusal).

AdvBench comes as llm-attacks' ``harmful_behaviors.csv`` (goal,target), as pyrit's offline YAML
(``seeds[i].value``; ``embedded:advbench``), as a hub dataset id (e.g. ``walledai/AdvBench``) or as
JSONL. Benign prompts come from MT-Bench's ``question.jsonl`` (first turns; ``embedded:mtbench``),
or any JSONL / CSV / text file of prompts. Sources are read by :mod:`fedrai.data.sources`; a malformed
file fails with its path and row, so a wrong file is caught before an hour of generation rather than after.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedrai.data.sources import PROMPT_SUFFIXES, BadRow, DataError, Record, first_text, read_records

# The one data error (fedrai.data.sources); kept under this name for evaluation callers.
EvalDataError = DataError


@dataclass(frozen=True)
class Behavior:
    """One AdvBench behaviour; ``target`` (the affirmative answer GCG aims for) may be unknown."""

    goal: str
    target: str | None
    id: str


# Columns that may hold the prompt, in the order they are tried (``value``: pyrit seed YAML).
ADVBENCH_FIELDS = ("goal", "prompt", "behavior", "Behavior", "instruction", "text", "value")
BENIGN_FIELDS = ("prompt", "instruction", "question", "turns", "messages", "goal", "objective", "text")


def load_advbench(source: str, *, split: str = "train", limit: int = 0) -> list[Behavior]:
    """Read AdvBench behaviours from a CSV, pyrit YAML, JSONL, hub dataset id or ``embedded:advbench``.

    Evaluation sets are exact: a bad row is an error naming the file and row, never a skip."""
    loaded = read_records(
        source,
        _behavior,
        what="AdvBench behaviours",
        split=split,
        suffixes=PROMPT_SUFFIXES,
        csv_comments=True,
    )
    return loaded.items[:limit] if limit else loaded.items


def load_advbench_goals(source: str, *, split: str = "train", limit: int = 0) -> list[str]:
    """Just the goal texts (what the model is asked)."""
    return [b.goal for b in load_advbench(source, split=split, limit=limit)]


def load_benign_prompts(source: str, *, split: str = "train", limit: int = 0) -> list[str]:
    """Benign prompts: MT-Bench ``question.jsonl`` first turns, or a JSONL / CSV / .txt of prompts."""
    loaded = read_records(
        source,
        lambda rec: benign_prompt(rec.value),
        what="prompts",
        split=split,
        suffixes=PROMPT_SUFFIXES,
        csv_comments=True,
    )
    return loaded.items[:limit] if limit else loaded.items


def _behavior(rec: Record) -> Behavior:
    goal = first_text(rec.value, ADVBENCH_FIELDS, "behaviour text")
    target = rec.value.get("target") if isinstance(rec.value, dict) else None
    return Behavior(goal, target.strip() if isinstance(target, str) else None, rec.row_id)


def benign_prompt(value: object) -> str:
    """The prompt of one benign record: a bare string, a prompt column, MT-Bench's first turn or the
    first user message."""
    if isinstance(value, dict):
        value = dict(value)
        turns = value.get("turns")
        if isinstance(turns, list):  # MT-Bench: the first turn is a standalone question
            value["turns"] = turns[0] if turns and isinstance(turns[0], str) else None
        messages = value.get("messages")
        if isinstance(messages, list):
            users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
            value["messages"] = users[0] if users else None
    if not isinstance(value, (dict, str)):
        raise BadRow("not_an_object", f"expected an object with a prompt field, got {type(value).__name__}")
    return first_text(value, BENIGN_FIELDS, "prompt text")
