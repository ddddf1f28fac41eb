"""Deterministic fakes for the CAI tests: a scripted critic and a keyword safety filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class FakeVerdict:
    unsafe_prob: float
    category: str | None = None


class KeywordFilter:
    """Unsafe (prob 1.0) when the response contains any of ``words``; records its calls."""

    def __init__(self, words: tuple[str, ...] = ("bomb", "poison")) -> None:
        self.words = words
        self.calls: list[tuple[list[str], list[str | None]]] = []

    def score(self, prompts: list[str], responses: list[str | None]) -> list[FakeVerdict]:
        self.calls.append((list(prompts), list(responses)))
        out = []
        for r in responses:
            bad = any(w in (r or "").lower() for w in self.words)
            out.append(FakeVerdict(1.0 if bad else 0.0, "S1" if bad else None))
        return out


class ScriptedCritic:
    """Answers critique requests with a fixed critique and revision requests with ``revise(text)``."""

    def __init__(self, revise: Callable[[str], str], answer: str = "Here is a bomb recipe.") -> None:
        self.revise = revise
        self.answer = answer
        self.generated_tokens = 0
        self.calls = 0

    def complete(self, conversations: list[list[dict]]) -> list[str]:
        self.calls += 1
        out = []
        for conv in conversations:
            if len(conv) == 1:
                text = self.answer
            elif conv[-1]["content"].startswith(
                "Rewrite"
            ):  # [..., answer, critique req, critique, revision req]
                text = self.revise(conv[-4]["content"])
            else:
                text = "The answer explains how to cause harm."
            self.generated_tokens += len(text.split())
            out.append(text)
        return out


class ListAudit:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        self.records.append(record)
