"""Read client data from any source into :class:`~fedrai.data.Row` s, accounting for every bad row.

Sources: a JSONL / CSV / JSON-list file, a folder of them, a folder written by
``datasets.Dataset.save_to_disk``, a hub dataset id, or ``embedded:NAME``. A bad row either stops the
run with the file and line (``on_bad_row = "error"``) or is counted by reason (``"skip"``); rows are
never lost silently, and library errors are turned into one-line :class:`DataError` messages.

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

import bisect
import csv
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedrai.assets import EMBEDDED_PREFIX, resolve
from fedrai.config import DataConfig
from fedrai.data import Message, Row

log = logging.getLogger(__name__)

FILE_SUFFIXES = (".jsonl", ".csv", ".json")
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
_SURROGATE = re.compile("[\ud800-\udfff]")
_VERDICT_PREFIX = re.compile(r"^[\s\"'*`#>]*(?:answer\s*:\s*)?[\s\"'*`]*", re.IGNORECASE)


class DataError(ValueError):
    """Data that cannot be used as configured; the message names the file and line or row."""


@dataclass
class LoadResult:
    """Rows plus what was dropped, so a run can report it instead of losing rows silently."""

    rows: list[Row]
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    source: str = ""


class _BadRow(Exception):
    """One unusable record: ``reason`` is the counting key, ``detail`` the human message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# (where for messages, row id, record or the problem that made it unreadable)
_Record = tuple[str, str, "dict[str, Any] | _BadRow"]
_Mapper = Callable[[dict[str, Any], str], Row]


# ----------------------------------------------------------------------------- public entry points
def load_rows(
    source: str, cfg: DataConfig, *, origin: str = "benign", seed: int = 0, prompt_only: bool = False
) -> LoadResult:
    """Load ``source`` into rows with ``cfg``'s field mapping, bad-row policy and ``max_rows`` sample.

    ``prompt_only``: rows without an answer are valid (``response`` is ""): for screening prompts
    (the safety filter's prompt mode). A prompt column alone, or messages without an assistant
    turn, then suffice."""
    kind = _embedded_kind(source)
    path_str = resolve(source) if source.startswith(EMBEDDED_PREFIX) else source
    mapper = _mapper(kind, cfg, origin, default_group=Path(path_str).name or source, prompt_only=prompt_only)
    records = _records(source, path_str, cfg, kind, prompt_only)
    rows: list[Row] = []
    reasons: Counter[str] = Counter()
    for where, row_id, rec in records:
        try:
            if isinstance(rec, _BadRow):
                raise rec
            if not isinstance(rec, dict):
                raise _BadRow("not_an_object", f"expected an object, got {type(rec).__name__}")
            rows.append(mapper(rec, row_id))
        except _BadRow as bad:
            if cfg.on_bad_row == "error":
                raise DataError(
                    f"{where}: {bad.detail} (set data.on_bad_row = 'skip' to skip such rows)"
                ) from None
            reasons[bad.reason] += 1
    skipped = sum(reasons.values())
    if skipped:
        log.warning("%s: skipped %d bad rows (%s)", source, skipped, _fmt_reasons(reasons))
    if not rows:
        extra = f"; skipped {skipped} bad rows ({_fmt_reasons(reasons)})" if skipped else ""
        raise DataError(f"{source}: no usable rows{extra}")
    if 0 < cfg.max_rows < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), cfg.max_rows))
        rows = [rows[i] for i in keep]
    return LoadResult(
        rows=rows, skipped=skipped, skipped_reasons=dict(sorted(reasons.items())), source=source
    )


def _fmt_reasons(reasons: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(reasons.items()))


def _embedded_kind(source: str) -> str:
    if source == "embedded:instructlab":
        return "instructlab"
    if source == "embedded:harmful-pairs" or Path(source).name == "many_shot_examples.json":
        return "harmful_pairs"
    return "generic"


# ----------------------------------------------------------------------------- sources -> records
def _records(
    source: str, path_str: str, cfg: DataConfig, kind: str, prompt_only: bool = False
) -> Iterator[_Record]:
    def check(columns: list[str], name: str) -> None:
        if kind == "generic":
            _check_columns(columns, name, cfg, prompt_only)

    path = Path(path_str).expanduser()
    if path.is_dir():
        if _is_saved_dataset(path):
            return _dataset_records(_load_from_disk(path, cfg.split), str(path), check)
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in FILE_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise DataError(f"{path}: folder has no {'/'.join(FILE_SUFFIXES)} files")
        return (r for f in files for r in _file_records(f, f.relative_to(path).as_posix(), check))
    if path.is_file():
        return _file_records(path, path.name, check)
    if (
        path.suffix.lower() in FILE_SUFFIXES
        or path_str.startswith((".", "/", "~"))
        or path_str.count("/") > 1
    ):
        raise DataError(f"{path_str}: no such file or folder")
    return _dataset_records(_load_hub(source, cfg.split), source, check)


def _file_records(path: Path, name: str, check: Callable[[list[str], str], None]) -> Iterator[_Record]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_records(path, name)
    if suffix == ".csv":
        return _csv_records(path, name, check)
    if suffix == ".json":
        return _json_records(path, name)
    raise DataError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(FILE_SUFFIXES)}")


def _jsonl_records(path: Path, name: str) -> Iterator[_Record]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where, row_id = f"{path}: line {lineno}", f"{name}:{lineno}"
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                yield (
                    where,
                    row_id,
                    _BadRow(
                        "bad_encoding", f"not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})"
                    ),
                )
                continue
            try:
                yield where, row_id, json.loads(text)
            except json.JSONDecodeError as err:
                yield (
                    where,
                    row_id,
                    _BadRow("malformed_json", f"malformed JSON: {err.msg} at column {err.colno}"),
                )


def _json_records(path: Path, name: str) -> Iterator[_Record]:
    """A JSON list, parsed element by element so that each record has its line number."""
    text = _read_text(path)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_right(line_starts, pos)

    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if text[pos : pos + 1] != "[":
        raise DataError(f"{path}: line {line_of(pos)}: expected a JSON list of objects at the top level")
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    index = 0
    while text[pos : pos + 1] != "]":
        index += 1
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}: line {err.lineno}: malformed JSON: {err.msg} at column {err.colno}"
            ) from None
        yield f"{path}: line {line_of(pos)} (record {index})", f"{name}:{index}", obj
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
        if text[pos : pos + 1] == ",":
            pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
        elif text[pos : pos + 1] != "]":
            raise DataError(
                f"{path}: line {line_of(pos)}: malformed JSON: expected ',' or ']' after record {index}"
            )


def _read_text(path: Path) -> str:
    """Undecodable bytes become lone surrogates and are reported per row as ``bad_encoding``."""
    return path.read_bytes().decode("utf-8-sig", errors="surrogateescape")


def _csv_records(path: Path, name: str, check: Callable[[list[str], str], None]) -> Iterator[_Record]:
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        reader = csv.DictReader(f)
        try:
            header = reader.fieldnames
            if not header:
                raise DataError(f"{path}: empty CSV (no header row)")
            check(list(header), str(path))
            for index, rec in enumerate(reader, start=1):
                where, row_id = f"{path}: record {index} (line {reader.line_num})", f"{name}:{index}"
                values = len(header) - sum(v is None for v in rec.values()) + len(rec.get(None) or [])  # type: ignore[call-overload]
                if values != len(header):
                    yield (
                        where,
                        row_id,
                        _BadRow("malformed_record", f"{values} values for {len(header)} columns"),
                    )
                else:
                    yield where, row_id, dict(rec)
        except csv.Error as err:
            raise DataError(f"{path}: line {reader.line_num}: unreadable CSV: {err}") from None


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (
        (path / "dataset_info.json").is_file() and (path / "state.json").is_file()
    )


def _load_from_disk(path: Path, split: str) -> Any:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as err:  # any library failure becomes one clear line
        raise DataError(f"{path}: cannot read saved dataset: {type(err).__name__}: {err}") from None
    return _pick_split(ds, split, str(path))


def _load_hub(source: str, split: str) -> Any:
    import datasets

    try:
        ds = datasets.load_dataset(source, split=split)
    except Exception as err:  # offline hub, bad id, missing split: one clear line
        raise DataError(
            f"{source}: not a local file or folder, and loading it as a hub dataset "
            f"(split {split!r}) failed: {type(err).__name__}: {err}"
        ) from None
    return _pick_split(ds, split, source)


def _pick_split(ds: Any, split: str, name: str) -> Any:
    import datasets

    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{name}: no split {split!r} (data.split); available: {', '.join(ds)}")
        ds = ds[split]
    if not isinstance(ds, datasets.Dataset):
        raise DataError(f"{name}: expected a datasets.Dataset, got {type(ds).__name__}")
    return ds


def _dataset_records(ds: Any, name: str, check: Callable[[list[str], str], None]) -> Iterator[_Record]:
    check(list(ds.column_names), name)
    for i, rec in enumerate(ds):
        yield f"{name}: row {i}", f"{name}:{i}", {k: v for k, v in rec.items() if v is not None}


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
        prompt = _text(rec, cfg.prompt_field, "data.prompt_field")
        if prompt_only and rec.get(cfg.response_field) in (None, ""):
            response = ""
        else:
            response = _text(rec, cfg.response_field, "data.response_field")
        messages = [Message(role="user", content=prompt)]
        if cfg.system_field and rec.get(cfg.system_field) not in (None, ""):
            system = _text(rec, cfg.system_field, "data.system_field")
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
    prompt = _text(rec, "user", "the pyrit 'user' field")
    response = _text(rec, "assistant", "the pyrit 'assistant' field")
    verdict = _VERDICT_PREFIX.sub("", _text(rec, "category", "the pyrit 'category' field"), count=1).lower()
    if verdict.startswith("not harmful"):
        label = HARMFUL_REFUSED
    elif verdict.startswith("harmful"):
        label = HARMFUL
    else:
        raise _BadRow(
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
            raise _BadRow(
                "bad_messages", f"field {field_name!r} is not a JSON message list: {err.msg}"
            ) from None
    if not isinstance(value, list) or not value:
        raise _BadRow(
            "bad_messages", f"field {field_name!r} must be a non-empty list of {{role, content}} objects"
        )
    messages: list[Message] = []
    for i, m in enumerate(value, start=1):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise _BadRow("bad_messages", f"{field_name}[{i}] must be an object with 'role' and 'content'")
        if m["role"] not in ROLES:
            raise _BadRow(
                "bad_messages",
                f"{field_name}[{i}] has role {m['role']!r}; expected one of {', '.join(ROLES)}",
            )
        messages.append(Message(role=m["role"], content=_text(m, "content", f"{field_name}[{i}]")))
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    if prompt_only and (last < 0 or messages[-1]["role"] == "user"):
        conversation = [m for m in messages if keep_system or m["role"] != "system"]
        if not any(m["role"] == "user" for m in conversation):
            raise _BadRow("bad_messages", f"{field_name} has no user message")
        return conversation, ""
    if last < 0:
        raise _BadRow("bad_messages", f"{field_name} has no assistant message to train on")
    conversation = [m for m in messages[:last] if keep_system or m["role"] != "system"]
    if not any(m["role"] == "user" for m in conversation):
        raise _BadRow("bad_messages", f"{field_name} has no user message before the last assistant message")
    return conversation, messages[last]["content"]


def _text(rec: dict[str, Any], key: str, knob: str) -> str:
    if key not in rec or rec[key] is None:
        raise _BadRow("missing_field", f"missing field {key!r} ({knob})")
    value = rec[key]
    if not isinstance(value, str):
        raise _BadRow("bad_text", f"field {key!r} is {type(value).__name__}, expected text")
    if not value.strip():
        raise _BadRow("empty_text", f"field {key!r} is empty")
    if _SURROGATE.search(value):
        raise _BadRow("bad_encoding", f"field {key!r} has bytes that are not valid UTF-8")
    return value


def _opt_str(rec: dict[str, Any], key: str) -> str:
    value = rec.get(key)
    return value.strip() if isinstance(value, str) else ""
