"""Read client data from any source into :class:`~fedrai.data.Row` s, accounting for every bad row.

Sources are whatever :mod:`fedrai.data.sources` reads (a JSONL / CSV / JSON-list / parquet file, a
folder of them, a folder written by ``datasets.Dataset.save_to_disk``, a hub dataset id, or
``embedded:NAME``), with its one bad-row policy: a bad row either stops the run with the file and line
(``data.on_bad_row = "error"``) or is counted by reason (``"skip"``); rows are never lost silently.
This module maps records to rows.

Embedded formats:

- ``embedded:instructlab``: chat rows. The file's own ``dataset`` and ``group`` fields hold one
  value for all 24,545 rows, so they cannot drive a label-skewed split; ``group`` is instead the
  task kind, the first word of the user prompt (``what``, ``explain``, ``summarize`` ...; rarer
  ones are ``other``).
- ``embedded:harmful-pairs`` (pyrit ``many_shot_examples.json``): ``user`` / ``assistant`` /
  ``category``, where the category text starts with a Harmful / Not harmful verdict on the answer.
  Harmful rows get ``origin = "harmful"`` (harmful prompt, compliant harmful answer: what the
  paper mixes into client data). Not-harmful rows get ``origin = "harmful_refused"`` (harmful
  prompt, answer judged safe: a refusal or a counter-argument), so they stay available as
  labelled examples but are not mixed in as harmful data. ``group`` is the same label.
  A local file named ``many_shot_examples.json`` is read the same way.

A row's own ``origin`` / ``group`` (or ``category``) string fields, when present, override the defaults.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedrai.assets import is_embedded, resolve
from fedrai.config import DataConfig
from fedrai.data import Message, Row
from fedrai.data.sources import BadRow, DataError, Record, read_records, text_field

__all__ = ["HARMFUL", "HARMFUL_REFUSED", "DataError", "LoadResult", "load_rows"]

ROLES = ("system", "user", "assistant")
HARMFUL = "harmful"
HARMFUL_REFUSED = "harmful_refused"
# The most frequent first words of instructlab user prompts (about 55% of rows); the rest are "other".
INSTRUCTLAB_TASKS = frozenset(
    [
        "what",
        "identify",
        "explain",
        "can",
        "provide",
        "how",
        "describe",
        "summarize",
        "determine",
        "which",
        "list",
        "given",
        "compose",
        "write",
    ]
)
_VERDICT_PREFIX = re.compile(r"^[\s\"'*`#>]*(?:answer\s*:\s*)?[\s\"'*`]*", re.IGNORECASE)
SKIP_HINT = "set data.on_bad_row = 'skip' to skip such rows"

_Mapper = Callable[[dict[str, Any], str], Row]


@dataclass
class LoadResult:
    """Rows plus what was dropped, so a run can report it instead of losing rows silently."""

    rows: list[Row]
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    source: str = ""


# ----------------------------------------------------------------------------- public entry points
def load_rows(
    source: str, cfg: DataConfig, *, origin: str = "benign", seed: int = 0, prompt_only: bool = False
) -> LoadResult:
    """Load ``source`` into rows with ``cfg``'s field mapping, bad-row policy and ``max_rows`` sample.

    ``prompt_only``: rows without an answer are valid (``response`` is ""): for screening prompts
    (the safety filter's prompt mode). A prompt column alone, or messages without an assistant
    turn, then suffice."""
    kind = _embedded_kind(source)
    mapper = _mapper(kind, cfg, origin, default_group=_default_group(source), prompt_only=prompt_only)

    def convert(rec: Record) -> Row:
        if not isinstance(rec.value, dict):
            raise BadRow("not_an_object", f"expected an object, got {type(rec.value).__name__}")
        return mapper(rec.value, rec.row_id)

    def check(columns: list[str], name: str) -> None:
        if kind == "generic":
            _check_columns(columns, name, cfg, prompt_only)

    loaded = read_records(
        source,
        convert,
        on_bad_row=cfg.on_bad_row,
        skip_hint=SKIP_HINT,
        split=cfg.split,
        check_columns=check,
    )
    rows = loaded.items
    if 0 < cfg.max_rows < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), cfg.max_rows))
        rows = [rows[i] for i in keep]
    return LoadResult(
        rows=rows, skipped=loaded.skipped, skipped_reasons=loaded.skipped_reasons, source=source
    )


def _default_group(source: str) -> str:
    """Rows without their own group are grouped by the source's file or folder name."""
    return Path(resolve(source) if is_embedded(source) else source).name or source


def _embedded_kind(source: str) -> str:
    if source == "embedded:instructlab":
        return "instructlab"
    if source == "embedded:harmful-pairs" or Path(source).name == "many_shot_examples.json":
        return "harmful_pairs"
    return "generic"


def _check_columns(columns: list[str], name: str, cfg: DataConfig, prompt_only: bool = False) -> None:
    """A table without the configured columns fails once, naming the knobs, not once per row."""
    cols = set(columns)
    needed = {cfg.prompt_field} if prompt_only else {cfg.prompt_field, cfg.response_field}
    if cfg.messages_field not in cols and not needed <= cols:
        raise DataError(
            f"{name}: has neither a {cfg.messages_field!r} column (data.messages_field) nor "
            f"{cfg.prompt_field!r} + {cfg.response_field!r} columns (data.prompt_field / data.response_field); "
            f"columns: {', '.join(sorted(cols))}"
        )


# ----------------------------------------------------------------------------- records -> rows
def _mapper(
    kind: str, cfg: DataConfig, origin: str, default_group: str, prompt_only: bool = False
) -> _Mapper:
    if kind == "instructlab":
        return lambda rec, row_id: _instructlab_row(rec, row_id, cfg, origin)
    if kind == "harmful_pairs":
        return _harmful_pair_row
    return lambda rec, row_id: _generic_row(rec, row_id, cfg, origin, default_group, prompt_only)


def _generic_row(
    rec: dict[str, Any],
    row_id: str,
    cfg: DataConfig,
    origin: str,
    default_group: str,
    prompt_only: bool = False,
) -> Row:
    if rec.get(cfg.messages_field) not in (None, ""):
        messages, response = _split_messages(
            rec[cfg.messages_field], cfg.messages_field, cfg.keep_system_prompt, prompt_only
        )
    else:
        prompt = text_field(rec, cfg.prompt_field, "data.prompt_field")
        if prompt_only and rec.get(cfg.response_field) in (None, ""):
            response = ""
        else:
            response = text_field(rec, cfg.response_field, "data.response_field")
        messages = [Message(role="user", content=prompt)]
        if cfg.system_field and rec.get(cfg.system_field) not in (None, ""):
            system = text_field(rec, cfg.system_field, "data.system_field")
            messages.insert(0, Message(role="system", content=system))
    group = _opt_str(rec, "group") or _opt_str(rec, "category") or default_group
    return Row(
        id=row_id, messages=messages, response=response, origin=_opt_str(rec, "origin") or origin, group=group
    )


def _instructlab_row(rec: dict[str, Any], row_id: str, cfg: DataConfig, origin: str) -> Row:
    messages, response = _split_messages(rec.get("messages"), "messages", cfg.keep_system_prompt)
    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    words = user.split()
    first = re.sub(r"[^a-z]", "", words[0].lower()) if words else ""
    group = first if first in INSTRUCTLAB_TASKS else "other"
    return Row(id=row_id, messages=messages, response=response, origin=origin, group=group)


def _harmful_pair_row(rec: dict[str, Any], row_id: str) -> Row:
    prompt = text_field(rec, "user", "the pyrit 'user' field")
    response = text_field(rec, "assistant", "the pyrit 'assistant' field")
    verdict = _VERDICT_PREFIX.sub(
        "", text_field(rec, "category", "the pyrit 'category' field"), count=1
    ).lower()
    if verdict.startswith("not harmful"):
        label = HARMFUL_REFUSED
    elif verdict.startswith("harmful"):
        label = HARMFUL
    else:
        raise BadRow(
            "bad_label", f"category {verdict[:40]!r} starts with neither 'Harmful' nor 'Not harmful'"
        )
    return Row(
        id=row_id,
        messages=[Message(role="user", content=prompt)],
        response=response,
        origin=label,
        group=label,
    )


def _split_messages(
    value: Any, field_name: str, keep_system: bool, prompt_only: bool = False
) -> tuple[list[Message], str]:
    """The last assistant turn is the answer; what precedes it is the conversation."""
    if isinstance(value, str):  # CSV cells carry messages as JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise BadRow(
                "bad_messages", f"field {field_name!r} is not a JSON message list: {err.msg}"
            ) from None
    if not isinstance(value, list) or not value:
        raise BadRow(
            "bad_messages", f"field {field_name!r} must be a non-empty list of {{role, content}} objects"
        )
    messages: list[Message] = []
    for i, m in enumerate(value, start=1):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise BadRow("bad_messages", f"{field_name}[{i}] must be an object with 'role' and 'content'")
        if m["role"] not in ROLES:
            raise BadRow(
                "bad_messages",
                f"{field_name}[{i}] has role {m['role']!r}; expected one of {', '.join(ROLES)}",
            )
        messages.append(Message(role=m["role"], content=text_field(m, "content", f"{field_name}[{i}]")))
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    if prompt_only and (last < 0 or messages[-1]["role"] == "user"):
        conversation = [m for m in messages if keep_system or m["role"] != "system"]
        if not any(m["role"] == "user" for m in conversation):
            raise BadRow("bad_messages", f"{field_name} has no user message")
        return conversation, ""
    if last < 0:
        raise BadRow("bad_messages", f"{field_name} has no assistant message to train on")
    conversation = [m for m in messages[:last] if keep_system or m["role"] != "system"]
    if not any(m["role"] == "user" for m in conversation):
        raise BadRow("bad_messages", f"{field_name} has no user message before the last assistant message")
    return conversation, messages[last]["content"]


def _opt_str(rec: dict[str, Any], key: str) -> str:
    value = rec.get(key)
    return value.strip() if isinstance(value, str) else ""
