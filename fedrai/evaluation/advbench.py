"""Evaluation prompt sets: AdvBench behaviours and benign prompts (for over-refusal).

AdvBench comes as llm-attacks' ``harmful_behaviors.csv`` (goal,target), as pyrit's offline YAML
(``seeds[i].value``; ``embedded:advbench``), as a hub dataset id (e.g. ``walledai/AdvBench``) or as
JSONL. Benign prompts come from MT-Bench's ``question.jsonl`` (first turns; ``embedded:mtbench``),
or any JSONL / CSV / text file of prompts. A malformed file fails with its path and row, so a wrong
file is caught before an hour of generation rather than after.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedrai.assets import is_embedded, resolve


class EvalDataError(ValueError):
    """An evaluation set that cannot be read; the message names the file and the row."""


@dataclass(frozen=True)
class Behavior:
    """One AdvBench behaviour; ``target`` (the affirmative answer GCG aims for) may be unknown."""

    goal: str
    target: str | None
    id: str


# Columns that may hold the prompt, in the order they are tried.
_ADVBENCH_FIELDS = ("goal", "prompt", "behavior", "Behavior", "instruction", "text")
_BENIGN_FIELDS = ("prompt", "instruction", "question", "turns", "messages", "goal", "objective", "text")
_TEXT_SUFFIXES = {".csv", ".jsonl", ".json", ".prompt", ".yaml", ".yml", ".txt"}


def load_advbench(source: str, *, split: str = "train", limit: int = 0) -> list[Behavior]:
    """Read AdvBench behaviours from a CSV, pyrit YAML, JSONL, hub dataset id or ``embedded:advbench``."""
    path = _local_path(source)
    if path is None:
        records = _load_hub(source, split)
        behaviors = [_behavior_from_record(rec, f"{source}[{i}]") for i, rec in enumerate(records)]
    else:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            behaviors = [_behavior_from_record(rec, where) for where, rec in _read_csv(path)]
        elif suffix in (".prompt", ".yaml", ".yml"):
            behaviors = [Behavior(text, None, where) for where, text in _read_pyrit_yaml(path)]
        elif suffix in (".jsonl", ".json"):
            behaviors = [_behavior_from_record(rec, where) for where, rec in _read_json_records(path)]
        else:
            raise EvalDataError(
                f"{path}: unknown AdvBench format {suffix!r}; use .csv, .jsonl, .json or pyrit .prompt/.yaml"
            )
    if not behaviors:
        raise EvalDataError(f"{source}: no AdvBench behaviours found")
    return behaviors[:limit] if limit else behaviors


def load_advbench_goals(source: str, *, split: str = "train", limit: int = 0) -> list[str]:
    """Just the goal texts (what the model is asked)."""
    return [b.goal for b in load_advbench(source, split=split, limit=limit)]


def load_benign_prompts(source: str, *, split: str = "train", limit: int = 0) -> list[str]:
    """Benign prompts: MT-Bench ``question.jsonl`` first turns, or a JSONL / CSV / .txt of prompts."""
    path = _local_path(source)
    if path is None:
        prompts = [
            _prompt_from_record(rec, f"{source}[{i}]") for i, rec in enumerate(_load_hub(source, split))
        ]
    else:
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".json"):
            prompts = [_prompt_from_record(rec, where) for where, rec in _read_json_records(path)]
        elif suffix == ".csv":
            prompts = [_prompt_from_record(rec, where) for where, rec in _read_csv(path)]
        elif suffix == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            prompts = [line.strip() for line in lines if line.strip()]
        else:
            raise EvalDataError(
                f"{path}: unknown prompt file format {suffix!r}; use .jsonl, .json, .csv or .txt"
            )
    if not prompts:
        raise EvalDataError(f"{source}: no prompts found")
    return prompts[:limit] if limit else prompts


# ----------------------------------------------------------------------------- sources
def _local_path(source: str) -> Path | None:
    """A local file for ``source``, or None when it should be read as a hub dataset id."""
    if is_embedded(source):
        return Path(resolve(source))
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.exists():
        raise EvalDataError(f"{path}: is a directory; give the file itself")
    looks_like_file = path.suffix.lower() in _TEXT_SUFFIXES or source.startswith((".", "/", "~"))
    if looks_like_file or source.count("/") != 1:
        raise EvalDataError(f"{source}: no such file (and not a hub dataset id of the form org/name)")
    return None


def _load_hub(dataset_id: str, split: str) -> list[dict[str, Any]]:
    """A hub dataset through ``datasets.load_dataset`` (needs the hub, or its local cache)."""
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as err:  # noqa: BLE001 - re-raised with the id and what to do
        raise EvalDataError(
            f"{dataset_id}: could not load hub dataset (split {split!r}): {err}. "
            "Offline, point the source at a local file or `embedded:NAME` instead."
        ) from err
    return [dict(rec) for rec in ds]


# ----------------------------------------------------------------------------- readers
def _read_csv(path: Path) -> list[tuple[str, dict[str, str]]]:
    """(``file:line``, record) pairs; lines are the physical line a record starts on."""
    out: list[tuple[str, dict[str, str]]] = []
    try:
        with open(path, encoding="utf-8", newline="") as f:
            lines = (line for line in f if not line.startswith("#"))  # e.g. '# dataset_version=1.2'
            reader = csv.DictReader(lines)
            if not reader.fieldnames:
                raise EvalDataError(f"{path}: empty CSV (no header row)")
            start = reader.line_num + 1
            for rec in reader:
                if None in rec:  # more cells than header columns
                    raise EvalDataError(
                        f"{path}:{start}: row has {len(rec) - 1 + len(rec[None])} cells but the header "
                        f"has {len(reader.fieldnames)} ({', '.join(reader.fieldnames)}); quote cells with commas"
                    )
                out.append((f"{path}:{start}", rec))
                start = reader.line_num + 1
    except (UnicodeDecodeError, csv.Error) as err:
        raise EvalDataError(f"{path}: not a readable CSV: {err}") from None
    return out


def _read_json_records(path: Path) -> list[tuple[str, Any]]:
    """JSONL (one object a line) or a JSON list; (``file:line`` or ``file[i]``, record) pairs."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise EvalDataError(f"{path}: not valid JSON: {err}") from None
        if not isinstance(data, list):
            raise EvalDataError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
        return [(f"{path}[{i}]", rec) for i, rec in enumerate(data)]
    out: list[tuple[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((f"{path}:{lineno}", json.loads(line)))
        except json.JSONDecodeError as err:
            raise EvalDataError(f"{path}:{lineno}: not valid JSON: {err.msg}") from None
    return out


def _read_pyrit_yaml(path: Path) -> list[tuple[str, str]]:
    """pyrit's seed-dataset YAML: ``seeds: [{value: ...}, ...]``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise EvalDataError(f"{path}: not valid YAML: {err}") from None
    seeds = data.get("seeds") if isinstance(data, dict) else None
    if not isinstance(seeds, list):
        raise EvalDataError(f"{path}: expected a pyrit seed dataset with a top-level 'seeds' list")
    out = []
    for i, seed in enumerate(seeds):
        value = seed.get("value") if isinstance(seed, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise EvalDataError(f"{path}: seeds[{i}] has no text 'value'")
        out.append((f"{path}:seeds[{i}]", value.strip()))
    return out


# ----------------------------------------------------------------------------- records
def _behavior_from_record(rec: Any, where: str) -> Behavior:
    if not isinstance(rec, dict):
        raise EvalDataError(f"{where}: expected an object with a 'goal' field, got {type(rec).__name__}")
    for field in _ADVBENCH_FIELDS:
        value = rec.get(field)
        if isinstance(value, str) and value.strip():
            target = rec.get("target")
            return Behavior(value.strip(), target.strip() if isinstance(target, str) else None, where)
    raise EvalDataError(
        f"{where}: no behaviour text; expected a non-empty one of {', '.join(_ADVBENCH_FIELDS)} "
        f"(fields present: {', '.join(map(str, rec)) or 'none'})"
    )


def _prompt_from_record(rec: Any, where: str) -> str:
    if isinstance(rec, str) and rec.strip():
        return rec.strip()
    if not isinstance(rec, dict):
        raise EvalDataError(f"{where}: expected an object with a prompt field, got {type(rec).__name__}")
    for field in _BENIGN_FIELDS:
        value = rec.get(field)
        if field == "turns" and isinstance(value, list) and value and isinstance(value[0], str):
            value = value[0]  # MT-Bench: the first turn is a standalone question
        elif field == "messages" and isinstance(value, list):
            users = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
            value = users[0] if users else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise EvalDataError(
        f"{where}: no prompt text; expected a non-empty one of {', '.join(_BENIGN_FIELDS)} "
        f"(fields present: {', '.join(map(str, rec)) or 'none'})"
    )
