"""Screen a client's rows before local training: score, then drop / refuse / revise.

:func:`screen_rows` is what the client calls. It returns the rows to train on, the rows for the
CAI pass, and counts. The counts are the only thing meant to leave the client: integers under
fixed keys (category keys use codes from a fixed list, never text from the data).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedrai.config import SafetyConfig
from fedrai.data import Row, prompt_of
from fedrai.safety.audit import AuditLog
from fedrai.safety.filters.base import INVALID_INPUT_REASONS, SafetyFilter, Verdict
from fedrai.safety.refusals import default_refusal, principle_for

COUNT_KEYS = (
    "safety.scored",
    "safety.flagged",
    "safety.dropped",
    "safety.refused",
    "safety.revised",
    "safety.kept",
    "safety.invalid",
    "safety.truncated",
)
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")

RefusalFn = Callable[[str, str | None], str]


@dataclass
class ScreenResult:
    """``kept``: rows to train on (refused rows carry their new response); ``to_revise``: rows
    for the CAI pass (action ``revise``); ``counts``: integers only, safe to send."""

    kept: list[Row]
    to_revise: list[Row]
    counts: dict[str, int]
    verdicts: dict[str, Verdict] = field(default_factory=dict)


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNT_KEYS, 0)


def category_key(category: str) -> str:
    """``safety.category.<CODE>``; anything that is not a short code (S1, toxicity) becomes
    ``other``, so a category string can never carry text from the data to the server."""
    return "safety.category." + (category if _CODE.fullmatch(category) else "other")


def screen_rows(
    rows: list[Row],
    cfg: SafetyConfig,
    safety_filter: SafetyFilter,
    audit: AuditLog | None,
    *,
    refusal_text_fn: RefusalFn = default_refusal,
    context: dict[str, Any] | None = None,
) -> ScreenResult:
    """Score ``rows`` and apply ``cfg.action`` to those at or above ``cfg.threshold``.

    Rows whose input cannot be judged (non-string or empty text) are never trained on: they are
    dropped whatever the action, and counted as invalid. ``refusal_text_fn(prompt, category)``
    writes the refusal for ``refuse`` (the CAI constitution can supply it).
    """
    counts = empty_counts()
    prompts = [_prompt(r) for r in rows]
    responses = [r.get("response") if isinstance(r, dict) else None for r in rows]
    verdicts = safety_filter.score(prompts, responses)
    kept: list[Row] = []
    to_revise: list[Row] = []
    records: list[dict[str, Any]] = []
    by_id: dict[str, Verdict] = {}
    for row, prompt, response, v in zip(rows, prompts, responses, verdicts, strict=True):
        row_id = str(row.get("id", "")) if isinstance(row, dict) else ""
        by_id[row_id] = v
        counts["safety.scored"] += 1
        counts["safety.truncated"] += int(v.truncated)
        counts["safety.invalid"] += int(v.invalid or v.unparseable)
        if v.unparseable:
            counts["safety.unparseable"] = counts.get("safety.unparseable", 0) + 1
        rec: dict[str, Any] = {
            "id": row_id,
            "score": round(v.unsafe_prob, 6),
            "category": v.category,
            "categories": list(v.categories),
            "threshold": cfg.threshold,
            "prompt": prompt,
            "response": response,
        }
        if v.invalid and v.reason in INVALID_INPUT_REASONS:
            counts["safety.dropped"] += 1
            records.append({**rec, "action": "drop", "reason": f"invalid input: {v.reason}"})
            continue
        if not v.flagged(cfg.threshold):
            counts["safety.kept"] += 1
            kept.append(row)
            records.append({**rec, "action": "keep", "reason": "below threshold"})
            continue
        counts["safety.flagged"] += 1
        for cat in v.categories:
            key = category_key(cat)
            counts[key] = counts.get(key, 0) + 1
        why = "unparseable judge output (fail closed)" if v.unparseable else f"score >= {cfg.threshold}"
        if cfg.action == "drop":
            counts["safety.dropped"] += 1
            records.append({**rec, "action": "drop", "reason": why})
        elif cfg.action == "refuse":
            text = refusal_text_fn(prompt if isinstance(prompt, str) else "", v.category)
            new_row: Row = {**row, "response": text}  # type: ignore[typeddict-item]
            kept.append(new_row)
            counts["safety.refused"] += 1
            counts["safety.kept"] += 1
            records.append(
                {
                    **rec,
                    "action": "refuse",
                    "reason": why,
                    "principle": principle_for(v.category),
                    "new_response": text,
                }
            )
        else:
            to_revise.append(row)
            counts["safety.revised"] += 1
            records.append({**rec, "action": "revise", "reason": why})
    if audit is not None:
        audit.write(records, context)
    return ScreenResult(kept, to_revise, counts, by_id)


def _prompt(row: Any) -> Any:
    """The judged prompt; a malformed row yields a non-string, which the filter marks invalid."""
    try:
        return prompt_of(row)
    except (KeyError, TypeError, AttributeError):
        return None
