"""The one safety-filter interface: batched scoring of (prompt, response) pairs.

Every backend returns one :class:`Verdict` per row. Input hygiene (non-strings, empty text,
overlong text) lives here, once, so every backend gives bad input the same defined result
instead of crashing a client halfway through its data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fedrai.config import SafetyConfig

# Reasons a row could not be judged at all (the guard never trains on such rows).
INVALID_INPUT_REASONS = ("non_string_prompt", "non_string_response", "empty_prompt", "empty_response")


@dataclass(frozen=True)
class Verdict:
    """One row's judgement.

    ``unsafe_prob`` is in [0, 1]; rows at or above ``cfg.threshold`` are flagged. ``invalid``
    marks rows whose input could not be judged (``reason`` says why; their probability is 1.0,
    fail closed). ``unparseable`` marks a judge model whose output could not be parsed (its
    probability follows ``cfg.on_unparseable``). ``truncated`` marks text cut to ``cfg.max_chars``.
    """

    unsafe_prob: float
    category: str | None = None
    truncated: bool = False
    invalid: bool = False
    unparseable: bool = False
    reason: str = ""
    categories: tuple[str, ...] = ()

    def flagged(self, threshold: float) -> bool:
        return self.unsafe_prob >= threshold


@dataclass(frozen=True)
class Judged:
    """What a backend returns for one clean row (the base class adds the input flags)."""

    unsafe_prob: float
    category: str | None = None
    unparseable: bool = False
    categories: tuple[str, ...] = ()


class SafetyFilter(ABC):
    """Scores rows in batches. Subclasses implement :meth:`_judge` on clean, non-empty text."""

    name: str = "base"

    def __init__(self, cfg: SafetyConfig) -> None:
        self.cfg = cfg

    @property
    def mode(self) -> str:
        return self.cfg.mode

    def score(self, prompts: Sequence[Any], responses: Sequence[Any] | None = None) -> list[Verdict]:
        """Judge each row per ``cfg.mode``; never raises on bad text, only on mismatched lengths."""
        if responses is None:
            responses = [None] * len(prompts)
        if len(prompts) != len(responses):
            raise ValueError(f"score: {len(prompts)} prompts but {len(responses)} responses")
        verdicts: list[Verdict | None] = [None] * len(prompts)
        clean: list[tuple[int, str, str | None, bool]] = []
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            problem, prompt, response, truncated = self._clean(p, r)
            if problem:
                verdicts[i] = Verdict(1.0, None, truncated, invalid=True, reason=problem)
            else:
                clean.append((i, prompt, response, truncated))
        step = self.cfg.batch_size
        for start in range(0, len(clean), step):
            chunk = clean[start : start + step]
            judged = self._judge([c[1] for c in chunk], [c[2] for c in chunk])
            for (i, _, _, truncated), j in zip(chunk, judged, strict=True):
                prob = min(1.0, max(0.0, float(j.unsafe_prob)))
                reason = "unparseable_output" if j.unparseable else ""
                cats = j.categories or ((j.category,) if j.category else ())
                verdicts[i] = Verdict(prob, j.category, truncated, False, j.unparseable, reason, cats)
        return [v for v in verdicts if v is not None]

    def _clean(self, prompt: Any, response: Any) -> tuple[str, str, str | None, bool]:
        """(problem, prompt, response, truncated) for one row under the current mode."""
        mode = self.cfg.mode
        if not isinstance(prompt, str):
            if mode != "response":
                return "non_string_prompt", "", None, False
            prompt = ""  # the response mode never looks at the prompt
        if mode == "prompt":
            response = None
        elif not isinstance(response, str):
            return "non_string_response", "", None, False
        if mode == "prompt" and not prompt.strip():
            return "empty_prompt", "", None, False
        if mode != "prompt" and not (response or "").strip():
            return "empty_response", "", None, False
        limit = self.cfg.max_chars
        truncated = len(prompt) > limit or (response is not None and len(response) > limit)
        prompt = prompt[:limit]
        if response is not None:
            response = response[:limit]
        return "", prompt, response, truncated

    @abstractmethod
    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        """Score clean rows (responses are None in prompt mode)."""
