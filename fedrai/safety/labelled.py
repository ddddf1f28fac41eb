"""Labelled rows for training the filter's head, their prompt-hash split, and user-labelled files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fedrai.data.sources import BadRow, Record, read_records

SAFE_SETS = ("benign", "refusal", "benign_refusal", "harmful_safe_answer")
_LABELS = {"unsafe": 1, "safe": 0, "1": 1, "0": 0, "true": 1, "false": 0}


@dataclass
class Example:
    """One labelled row: label 1 = unsafe. ``response`` is None for prompt-only rows."""

    prompt: str
    response: str | None
    label: int
    set: str
    split: str = "train"
    source: str = ""


def norm_text(text: str) -> str:
    """Lower case, whitespace collapsed: the key prompts are split and de-duplicated by."""
    return " ".join(text.lower().split())


def split_of(prompt: str, seed: int) -> str:
    """train 60 / val 20 / test 20 by the normalised prompt's hash: a prompt never crosses splits."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{norm_text(prompt)}".encode()).digest()[:4], "big") % 100
    return "train" if h < 60 else ("val" if h < 80 else "test")


def load_labelled_jsonl(path: str, seed: int = 0) -> list[Example]:
    """User labels: rows with ``prompt``, optional ``response``, ``label`` (1/0 or unsafe/safe) and
    optional ``split`` (train/val/test; default: by prompt hash). Any table source
    (:mod:`fedrai.data.sources`: JSONL, CSV, JSON, parquet, a folder); a bad row is an error naming
    the file and row."""

    def convert(rec: Record) -> Example:
        row = rec.value
        if not isinstance(row, dict) or "prompt" not in row or "label" not in row:
            raise BadRow("missing_field", "expected an object with prompt, label (and response)")
        prompt, response = row["prompt"], row.get("response")
        label = _LABELS.get(str(row["label"]).lower())
        if (
            label is None
            or not isinstance(prompt, str)
            or not (response is None or isinstance(response, str))
        ):
            raise BadRow("bad_label", "label must be 0/1 or safe/unsafe; prompt/response strings")
        kind = "prompt_only" if not response else ("labelled_unsafe" if label else "labelled_safe")
        split = str(row.get("split") or split_of(prompt, seed))
        return Example(prompt, response or None, label, kind, split, rec.row_id)

    return read_records(str(path), convert, what="labelled rows").items
