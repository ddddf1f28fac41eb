"""One way to read a data source: resolve it, yield its records, apply one bad-row policy.

Every reader of rows (client data, evaluation prompt sets, red-team prompts, labelled filter data)
goes through here, so "is it a file, a folder, a hub dataset or an embedded asset?" is answered
once, each format is parsed once, and a bad row is handled the same way everywhere: an error
naming the file, the row and the problem (``on_bad_row = "error"``) or a skip counted by reason
(``"skip"``). Library errors become one-line :class:`DataError` messages.

A source is resolved in this order:

1. ``embedded:NAME``: the fetched asset's path (:mod:`fedrai.assets`).
2. An existing local path: a file by its suffix (``.jsonl``, ``.csv``, ``.json`` list, ``.parquet``;
   for prompt sets also pyrit ``.yaml`` / ``.yml`` / ``.prompt`` and ``.txt``, one prompt a line),
   a folder written by ``datasets.Dataset.save_to_disk``, or a folder of such files (read
   recursively, in name order).
3. Something that looks like a path (a known suffix, a leading ``.``, ``/`` or ``~``, or more than
   one ``/``) but does not exist: an error.
4. Anything else is a hub dataset id, read through ``datasets.load_dataset`` (its local cache
   when offline); when that fails, the error says so and what to use instead.

Where a record came from reads the same in every message: ``FILE: line N`` (JSONL, text),
``FILE: record N (line L)`` (CSV), ``FILE: line L (record N)`` (JSON list), ``FILE: seeds[i]``
(pyrit YAML), ``NAME: row i`` (parquet, datasets).
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from fedrai.assets import is_embedded, resolve

log = logging.getLogger(__name__)

T = TypeVar("T")
BadRowPolicy = Literal["error", "skip"]
# Table formats: what client data and labelled data may be (and what a folder is scanned for).
TABLE_SUFFIXES = (".jsonl", ".csv", ".json", ".parquet")
# Prompt sets may also be pyrit seed YAML or plain text.
PROMPT_SUFFIXES = (*TABLE_SUFFIXES, ".yaml", ".yml", ".prompt", ".txt")
_YAML_SUFFIXES = (".yaml", ".yml", ".prompt")
_SURROGATE = re.compile("[\ud800-\udfff]")
ColumnCheck = Callable[[list[str], str], None]


class DataError(ValueError):
    """Data that cannot be used as configured; the message names the file and line or row."""


class BadRow(Exception):
    """One unusable record: ``reason`` is the counting key, ``detail`` the human message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Record:
    """One record of a source: ``where`` for messages, ``row_id`` as a stable id, ``value`` as read
    (a dict for tables; a string for text lines and plain YAML items), or the ``problem`` that made
    it unreadable."""

    where: str
    row_id: str
    value: Any = None
    problem: BadRow | None = None


@dataclass
class Loaded(Generic[T]):
    """What a source gave: the converted items and the skipped rows by reason."""

    items: list[T]
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return sum(self.skipped_reasons.values())


# ----------------------------------------------------------------------------- the policy
def read_records(
    source: str,
    convert: Callable[[Record], T],
    *,
    what: str = "rows",
    on_bad_row: BadRowPolicy = "error",
    skip_hint: str = "",
    split: str = "train",
    suffixes: tuple[str, ...] = TABLE_SUFFIXES,
    check_columns: ColumnCheck | None = None,
    csv_comments: bool = False,
) -> Loaded[T]:
    """Every record of ``source`` through ``convert``; a :class:`BadRow` (read or raised by
    ``convert``) stops with ``FILE: row: problem`` or is counted, by ``on_bad_row``.

    ``skip_hint`` is appended to a bad-row error (how to skip instead); ``what`` names the items
    in the "no usable ..." error. See :func:`iter_records` for the other arguments."""
    records = iter_records(
        source, split=split, suffixes=suffixes, check_columns=check_columns, csv_comments=csv_comments
    )
    return apply_policy(
        records, convert, source=source, what=what, on_bad_row=on_bad_row, skip_hint=skip_hint
    )


def apply_policy(
    records: Iterable[Record],
    convert: Callable[[Record], T],
    *,
    source: str,
    what: str = "rows",
    on_bad_row: BadRowPolicy = "error",
    skip_hint: str = "",
) -> Loaded[T]:
    """The one bad-row policy over already-read records (see :func:`read_records`)."""
    items: list[T] = []
    reasons: Counter[str] = Counter()
    for rec in records:
        try:
            if rec.problem is not None:
                raise rec.problem
            items.append(convert(rec))
        except BadRow as bad:
            if on_bad_row == "error":
                hint = f" ({skip_hint})" if skip_hint else ""
                raise DataError(f"{rec.where}: {bad.detail}{hint}") from None
            reasons[bad.reason] += 1
    skipped = sum(reasons.values())
    if skipped:
        log.warning("%s: skipped %d bad rows (%s)", source, skipped, format_reasons(reasons))
    if not items:
        extra = f"; skipped {skipped} bad rows ({format_reasons(reasons)})" if skipped else ""
        raise DataError(f"{source}: no usable {what}{extra}")
    return Loaded(items=items, skipped_reasons=dict(sorted(reasons.items())))


def format_reasons(reasons: dict[str, int]) -> str:
    """``reason=count, ...`` in name order, for logs and errors."""
    return ", ".join(f"{k}={v}" for k, v in sorted(reasons.items()))


def text_field(rec: dict[str, Any], key: str, knob: str) -> str:
    """A required non-empty text field, or the :class:`BadRow` saying what is wrong with it."""
    if key not in rec or rec[key] is None:
        raise BadRow("missing_field", f"missing field {key!r} ({knob})")
    value = rec[key]
    if not isinstance(value, str):
        raise BadRow("bad_text", f"field {key!r} is {type(value).__name__}, expected text")
    if not value.strip():
        raise BadRow("empty_text", f"field {key!r} is empty")
    if _SURROGATE.search(value):
        raise BadRow("bad_encoding", f"field {key!r} has bytes that are not valid UTF-8")
    return value


def first_text(rec: Any, fields: tuple[str, ...], what: str) -> str:
    """The first non-empty text among ``fields`` (a bare string record is its own text), stripped."""
    if isinstance(rec, str) and rec.strip():
        value = rec.strip()
    elif isinstance(rec, dict):
        found = (rec.get(f) for f in fields)
        value = next((v.strip() for v in found if isinstance(v, str) and v.strip()), "")
        if not value:
            raise BadRow(
                "missing_field",
                f"no {what}; expected a non-empty one of {', '.join(fields)} "
                f"(fields present: {', '.join(map(str, rec)) or 'none'})",
            )
    else:
        raise BadRow("not_an_object", f"expected an object with a {what} field, got {type(rec).__name__}")
    if _SURROGATE.search(value):
        raise BadRow("bad_encoding", f"{what} has bytes that are not valid UTF-8")
    return value


# ----------------------------------------------------------------------------- sources -> records
def local_path(source: str) -> Path | None:
    """The local file or folder ``source`` names, or None when it is a hub dataset id."""
    path = Path(resolve(source)) if is_embedded(source) else Path(source).expanduser()
    if path.exists():
        return path
    looks_like_path = (
        is_embedded(source)
        or path.suffix.lower() in PROMPT_SUFFIXES
        or source.startswith((".", "/", "~"))
        or source.count("/") > 1
    )
    if looks_like_path:
        raise DataError(f"{source}: no such file or folder")
    return None


def iter_records(
    source: str,
    *,
    split: str = "train",
    suffixes: tuple[str, ...] = TABLE_SUFFIXES,
    check_columns: ColumnCheck | None = None,
    csv_comments: bool = False,
) -> Iterator[Record]:
    """The records of ``source`` (see the module doc for how it is resolved).

    ``suffixes``: the file types accepted (and a folder is scanned for); ``check_columns(columns,
    name)`` is called once per table with its header, to fail once rather than on every row;
    ``csv_comments``: drop CSV lines starting with ``#`` (pyrit's ``# dataset_version=...``)."""
    check = check_columns or (lambda columns, name: None)
    path = local_path(source)
    if path is None:
        return _dataset_records(load_hub(source, split), source, check)
    if path.is_dir():
        if _is_saved_dataset(path):
            return _dataset_records(_load_from_disk(path, split), str(path), check)
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
        )
        if not files:
            raise DataError(f"{path}: folder has no {'/'.join(suffixes)} files")
        return (
            r
            for f in files
            for r in _file_records(f, f.relative_to(path).as_posix(), suffixes, check, csv_comments)
        )
    return _file_records(path, path.name, suffixes, check, csv_comments)


def _file_records(
    path: Path, name: str, suffixes: tuple[str, ...], check: ColumnCheck, csv_comments: bool
) -> Iterator[Record]:
    suffix = path.suffix.lower()
    if suffix not in suffixes:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(suffixes)}")
    if suffix == ".jsonl":
        return _jsonl_records(path, name)
    if suffix == ".csv":
        return _csv_records(path, name, check, csv_comments)
    if suffix == ".json":
        return _json_records(path, name)
    if suffix == ".parquet":
        return _parquet_records(path, name, check)
    if suffix in _YAML_SUFFIXES:
        return _yaml_records(path, name)
    return _text_records(path, name)


def _jsonl_records(path: Path, name: str) -> Iterator[Record]:
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where, row_id = f"{path}: line {lineno}", f"{name}:{lineno}"
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as err:
                detail = f"not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1})"
                yield Record(where, row_id, problem=BadRow("bad_encoding", detail))
                continue
            try:
                yield Record(where, row_id, json.loads(text))
            except json.JSONDecodeError as err:
                detail = f"malformed JSON: {err.msg} at column {err.colno}"
                yield Record(where, row_id, problem=BadRow("malformed_json", detail))


def _json_records(path: Path, name: str) -> Iterator[Record]:
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
        yield Record(f"{path}: line {line_of(pos)} (record {index})", f"{name}:{index}", obj)
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


def _csv_records(path: Path, name: str, check: ColumnCheck, comments: bool) -> Iterator[Record]:
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        physical: list[int] = []  # physical line number of each line the reader was given

        def lines() -> Iterator[str]:
            for number, line in enumerate(f, start=1):
                if not (comments and line.startswith("#")):
                    physical.append(number)
                    yield line

        reader = csv.DictReader(lines())
        try:
            header = reader.fieldnames
            if not header:
                raise DataError(f"{path}: empty CSV (no header row)")
            check(list(header), str(path))
            for index, rec in enumerate(reader, start=1):
                line = physical[reader.line_num - 1]
                where, row_id = f"{path}: record {index} (line {line})", f"{name}:{index}"
                values = len(header) - sum(v is None for v in rec.values()) + len(rec.get(None) or [])  # type: ignore[call-overload]
                if values != len(header):
                    detail = (
                        f"{values} values for {len(header)} columns ({', '.join(header)}); "
                        "quote cells that hold commas"
                    )
                    yield Record(where, row_id, problem=BadRow("malformed_record", detail))
                else:
                    yield Record(where, row_id, dict(rec))
        except csv.Error as err:
            line = physical[reader.line_num - 1] if reader.line_num else 0
            raise DataError(f"{path}: line {line}: unreadable CSV: {err}") from None


def _parquet_records(path: Path, name: str, check: ColumnCheck) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # any library failure becomes one clear line
        raise DataError(f"{path}: cannot read parquet: {type(err).__name__}: {err}") from None
    check(list(table.column_names), str(path))
    for i, rec in enumerate(table.to_pylist()):
        yield Record(f"{path}: row {i}", f"{name}:{i}", {k: v for k, v in rec.items() if v is not None})


def _yaml_records(path: Path, name: str) -> Iterator[Record]:
    """pyrit's seed-dataset YAML (``seeds: [{value: ...}]``), a ``prompts`` list, or a bare list."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid YAML: {err}") from None
    key = "seeds"
    if isinstance(data, dict):
        key = "seeds" if "seeds" in data else "prompts"
        data = data.get(key)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a pyrit seed dataset with a top-level 'seeds' list")
    for i, item in enumerate(data):
        yield Record(f"{path}: {key}[{i}]", f"{name}:{i}", item)


def _text_records(path: Path, name: str) -> Iterator[Record]:
    """One record (a string) per non-empty line."""
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if line.strip():
            yield Record(f"{path}: line {lineno}", f"{name}:{lineno}", line.strip())


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


def load_hub(source: str, split: str) -> Any:
    """A hub dataset through ``datasets.load_dataset`` (the hub, or its local cache offline); one split."""
    import datasets

    try:
        ds = datasets.load_dataset(source, split=split)
    except Exception as err:  # offline hub, bad id, missing split: one clear line
        raise DataError(
            f"{source}: not a local file or folder, and loading it as a hub dataset "
            f"(split {split!r}) failed: {type(err).__name__}: {err}. Offline, use a local file, "
            "folder or `embedded:NAME` instead"
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


def _dataset_records(ds: Any, name: str, check: ColumnCheck) -> Iterator[Record]:
    check(list(ds.column_names), name)
    for i, rec in enumerate(ds):
        yield Record(f"{name}: row {i}", f"{name}:{i}", {k: v for k, v in rec.items() if v is not None})
