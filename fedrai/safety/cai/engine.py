"""The critique -> revise -> re-check loop (Bai et al. 2022, supervised CAI stage).

For each (conversation, response): the critic is asked to critique the response under a principle,
then to revise it; the revision is sanity-checked and re-scored by the safety filter in context.
A row whose revisions keep failing falls back to a refusal grounded in the constitution, or is
dropped. Every step goes to the local audit (texts stay on the machine that ran CAI); only the
counts in :class:`CAICounts` are meant to travel.

Small models critique poorly, so the loop is honest about it: revisions that are empty, copy the
original, or parrot the request are not accepted, and the fallback counts say how often the model
itself produced the answer that is trained on.
"""

from __future__ import annotations

import difflib
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from fedrai.config import CAIConfig
from fedrai.safety.cai.constitution import Constitution
from fedrai.safety.cai.llm import Conversation, Critic

log = logging.getLogger(__name__)

Status = Literal["revised", "refusal", "dropped", "kept"]


class Scorer(Protocol):
    """What the engine needs of a safety filter: unsafe probability of (prompt, response)."""

    def score(self, prompts: list[str], responses: list[str | None]) -> list[Any]: ...


class Audit(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...


@dataclass
class CAICounts:
    """Aggregate numbers only: safe to send to the server (no text, no per-row values)."""

    rows: int = 0
    revised_by_model: int = 0
    fallback_refusals: int = 0
    dropped: int = 0
    kept_original: int = 0
    tries: int = 0
    invalid_revisions: int = 0
    rejected_by_filter: int = 0
    generated_responses: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0

    def add(self, other: CAICounts) -> CAICounts:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)
        return self

    def to_metrics(self, prefix: str = "cai.") -> dict[str, float]:
        return {f"{prefix}{k}": float(v) for k, v in asdict(self).items()}


@dataclass
class CAIOutcome:
    """What CAI made of one row. ``final`` is None when the row is dropped."""

    index: int
    row_id: str
    conversation: Conversation
    original: str
    final: str | None
    status: Status
    principles: list[str] = field(default_factory=list)
    tries: int = 0


@dataclass
class CAIResult:
    outcomes: list[CAIOutcome]
    counts: CAICounts


_LABEL = re.compile(
    r"^\s*(?:revision|revised (?:answer|response)|rewritten (?:answer|response)|rewrite|answer)\s*:\s*",
    re.IGNORECASE,
)


def clean_revision(text: str) -> str:
    """Strip a leading 'Revision:'-style label and wrapping quotes, which chat models often add."""
    text = _LABEL.sub("", text.strip()).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def check_revision(revision: str, original: str, requests: Sequence[str], critique: str) -> str | None:
    """Why a revision is not a revision (``empty``, ``identical``, ``echo``), or None if it is one.

    A weak model often returns nothing, repeats its answer, or repeats the request; training on
    any of those would teach the wrong thing, so they count as failed tries. ``requests`` are
    the critique/revision requests the model may parrot (all of the constitution's, by default).
    """
    rev = _norm(revision)
    if not rev:
        return "empty"
    orig = _norm(original)
    if rev == orig or (orig and difflib.SequenceMatcher(None, rev, orig).ratio() >= 0.95):
        return "identical"
    for prompt_text in requests:
        req = _norm(prompt_text)
        head = " ".join(req.split()[:8])
        if head and head in rev:
            return "echo"
        if difflib.SequenceMatcher(None, rev, req).ratio() >= 0.8:
            return "echo"
    crit = _norm(critique)
    if crit and (rev == crit or difflib.SequenceMatcher(None, rev, crit).ratio() >= 0.9):
        return "echo"
    return None


def _prompt_text(conversation: Conversation) -> str:
    for message in reversed(conversation):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def _unsafe_prob(verdict: Any) -> float:
    prob = getattr(verdict, "unsafe_prob", None)
    if prob is None and isinstance(verdict, dict):
        prob = verdict.get("unsafe_prob")
    return float(prob) if prob is not None else 1.0


class CAIEngine:
    """Runs critique-and-revise over a batch of rows with one critic, filter and constitution."""

    def __init__(
        self,
        constitution: Constitution,
        critic: Critic,
        cfg: CAIConfig,
        *,
        safety_filter: Scorer | None = None,
        threshold: float = 0.5,
        audit: Audit | None = None,
        audit_context: dict[str, Any] | None = None,
    ) -> None:
        self.constitution = constitution
        self.critic = critic
        self.cfg = cfg
        self.safety_filter = safety_filter
        self.threshold = threshold
        self.audit = audit
        self.audit_context = dict(audit_context or {})
        if getattr(safety_filter, "mode", None) == "prompt":
            log.warning(
                "safety filter mode is 'prompt': it cannot tell a revision from the original, so every "
                "CAI revision will fail the re-check; use mode 'response_in_context' with CAI"
            )

    # ------------------------------------------------------------------ helpers
    def _write(self, record: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.write({**self.audit_context, **record})

    def _score(self, conversations: list[Conversation], responses: list[str]) -> list[tuple[float, Any]]:
        """(unsafe_prob, category) per response, judged in the context of its prompt."""
        if self.safety_filter is None or not responses:
            return [(0.0, None)] * len(responses)
        verdicts = self.safety_filter.score([_prompt_text(c) for c in conversations], list(responses))
        return [(_unsafe_prob(v), getattr(v, "category", None)) for v in verdicts]

    # ---------------------------------------------------------------------- run
    def run(
        self,
        conversations: list[Conversation],
        responses: list[str | None],
        *,
        seed: int,
        ids: list[str] | None = None,
        original_unsafe: list[bool] | None = None,
    ) -> CAIResult:
        """Critique and revise every row; see the module docstring for what happens to each.

        ``original_unsafe``: the filter's flags on the originals when the caller already has them;
        otherwise they are scored here. A row whose original was safe and whose revisions all fail
        keeps its original (a failed critique is no reason to refuse a benign request).
        """
        started = time.perf_counter()
        tokens_before = self.critic.generated_tokens
        n = len(conversations)
        if len(responses) != n:
            raise ValueError(f"{n} conversations but {len(responses)} responses")
        ids = ids if ids is not None else [str(i) for i in range(n)]
        counts = CAICounts(rows=n)
        if n == 0:
            return CAIResult([], counts)

        originals: list[str] = [r if r is not None else "" for r in responses]
        missing = [i for i, r in enumerate(responses) if r is None]
        if missing:
            generated = self.critic.complete([conversations[i] for i in missing])
            for i, text in zip(missing, generated, strict=True):
                originals[i] = text
            counts.generated_responses = len(missing)

        if original_unsafe is None:
            if self.safety_filter is None:
                original_unsafe = [True] * n  # the caller asked for CAI on them: treat as needing it
            else:
                original_unsafe = [p >= self.threshold for p, _ in self._score(conversations, originals)]

        principles = self.constitution.principles
        requests = [t for p in principles for t in (p.critique, p.revision)]
        schedule = self.constitution.schedule(n, self.cfg.revision_rounds, self.cfg.principle_order, seed)
        rng = random.Random(seed + 1)
        current = list(originals)
        accepted = [False] * n
        used: list[list[str]] = [[] for _ in range(n)]
        last_principle = [schedule[i][0] for i in range(n)]
        tries_of = [0] * n

        for rnd in range(self.cfg.revision_rounds):
            chosen = {i: schedule[i][rnd] for i in range(n)}
            pending = list(range(n))
            for attempt in range(self.cfg.max_tries):
                if not pending:
                    break
                if attempt and self.cfg.principle_order == "random":
                    # A fresh principle gives a retry a different angle instead of the same prompt.
                    chosen.update({i: rng.randrange(len(principles)) for i in pending})
                base = [[*conversations[i], {"role": "assistant", "content": current[i]}] for i in pending]
                crit_convs = [
                    [*b, {"role": "user", "content": principles[chosen[i]].critique}]
                    for b, i in zip(base, pending, strict=True)
                ]
                critiques = self.critic.complete(crit_convs)
                rev_convs = [
                    [
                        *cc,
                        {"role": "assistant", "content": crit},
                        {"role": "user", "content": principles[chosen[i]].revision},
                    ]
                    for cc, crit, i in zip(crit_convs, critiques, pending, strict=True)
                ]
                revisions = [clean_revision(r) for r in self.critic.complete(rev_convs)]
                counts.tries += len(pending)

                reasons: dict[int, str | None] = {}
                for i, crit, rev in zip(pending, critiques, revisions, strict=True):
                    tries_of[i] += 1
                    last_principle[i] = chosen[i]
                    used[i].append(principles[chosen[i]].name)
                    reasons[i] = check_revision(rev, current[i], requests, crit)
                valid = [k for k, i in enumerate(pending) if reasons[i] is None]
                scores = self._score(
                    [conversations[pending[k]] for k in valid], [revisions[k] for k in valid]
                )
                verdict_of = {pending[k]: s for k, s in zip(valid, scores, strict=True)}

                still: list[int] = []
                for k, i in enumerate(pending):
                    prob, category = verdict_of.get(i, (None, None))
                    ok = reasons[i] is None and prob is not None and prob < self.threshold
                    if reasons[i] is not None:
                        counts.invalid_revisions += 1
                    elif not ok:
                        counts.rejected_by_filter += 1
                    self._write(
                        {
                            "event": "cai.try",
                            "row_id": ids[i],
                            "revision_round": rnd,
                            "try": attempt + 1,
                            "principle": principles[chosen[i]].name,
                            "prompt": _prompt_text(conversations[i]),
                            "response": current[i],
                            "critique": critiques[k],
                            "revision": revisions[k],
                            "invalid": reasons[i],
                            "unsafe_prob": prob,
                            "category": category,
                            "accepted": ok,
                        }
                    )
                    if ok:
                        current[i] = revisions[k]
                        accepted[i] = True
                    else:
                        still.append(i)
                pending = still

        outcomes: list[CAIOutcome] = []
        for i in range(n):
            final: str | None
            if accepted[i]:
                status: Status = "revised"
                final = current[i]
                counts.revised_by_model += 1
            elif not original_unsafe[i]:
                status, final = "kept", originals[i]
                counts.kept_original += 1
            elif self.cfg.fallback == "refuse":
                status = "refusal"
                final = self.constitution.refusal_for_prompt(
                    _prompt_text(conversations[i]), rng, fallback=last_principle[i]
                )
                counts.fallback_refusals += 1
            else:
                status, final = "dropped", None
                counts.dropped += 1
            outcomes.append(
                CAIOutcome(
                    index=i,
                    row_id=ids[i],
                    conversation=conversations[i],
                    original=originals[i],
                    final=final,
                    status=status,
                    principles=used[i],
                    tries=tries_of[i],
                )
            )
            self._write(
                {
                    "event": "cai.outcome",
                    "row_id": ids[i],
                    "prompt": _prompt_text(conversations[i]),
                    "original": originals[i],
                    "original_unsafe": bool(original_unsafe[i]),
                    "final": final,
                    "status": status,
                    "fallback": status in ("refusal", "dropped"),
                    "tries": tries_of[i],
                    "principles": used[i],
                }
            )
        counts.generated_tokens = self.critic.generated_tokens - tokens_before
        counts.seconds = time.perf_counter() - started
        return CAIResult(outcomes, counts)
