"""The filter's labelled data, every row tagged with the SOURCE it comes from (for leave-one-source-out).

Sources (``source_of``): the offline assets of ``default_labelled.default_examples`` (``harmful-pairs``,
``harmbench`` and ``strongreject`` prompts with their template refusals, ``refusal-evals`` and
``objective-evals`` from pyrit, ``instructlab`` benign pairs, ``advbench`` test-only) plus the
templated contrast data of :mod:`fedrai.data.contrast` (``contrast-safe``: safe prompts with alarming
words and helpful answers; ``contrast-harmful``: harmful prompts answered by harm-naming refusals;
``contrast-borderline``: fine answers to borderline questions). Contrast families reserved for eval
(``fedrai.data.contrast.EVAL_FAMILIES``) get split ``heldout``: never trained on, by any design.

Each ``Example`` is one judged input: ``response`` None = a prompt-only row (prompt mode).
"""

from __future__ import annotations

import hashlib
from typing import Any

from fedrai.data.contrast import contrast_rows
from fedrai.safety.default_labelled import DEFAULT_DATA_OPTIONS, default_examples
from fedrai.safety.labelled import Example

CONTRAST_SETS = {"safe_alarming": "safe_alarming", "harmful": "refusal", "borderline": "borderline"}
PROMPT_SETS = {
    "safe_alarming": "safe_alarming_prompt",
    "harmful": "harmful_prompt",
    "borderline": "borderline_prompt",
}


def source_of(ex: Example) -> str:
    """The source name of a row (the part of ``Example.source`` before the first colon)."""
    return ex.source.split(":", 1)[0]


def _split(prompt: str, seed: int) -> str:
    key = " ".join(prompt.lower().split())
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "big") % 100
    return "train" if h < 60 else ("val" if h < 80 else "test")


def contrast_examples(seed: int = 0) -> list[Example]:
    """Contrast rows as filter examples: each gives an in-context row and a prompt-only row."""
    out: list[Example] = []
    for split in ("train", "eval"):
        for i, r in enumerate(contrast_rows(split, seed)):  # type: ignore[arg-type]
            part = "heldout" if split == "eval" else _split(r["prompt"], seed)
            src = f"contrast-{r['kind'].replace('safe_alarming', 'safe')}:{r['family']}:{i}"
            out.append(Example(r["prompt"], r["response"], 0, CONTRAST_SETS[r["kind"]], part, src))
            out.append(Example(r["prompt"], None, r["label"], PROMPT_SETS[r["kind"]], part, src))
    return out


def everyday_examples(seed: int = 0) -> list[Example]:
    """Everyday how-to requests (:mod:`fedrai.data.everyday`): benign pairs and prompt-only rows,
    source ``everyday``; eval families get split ``heldout``."""
    from fedrai.data.everyday import everyday_rows

    out: list[Example] = []
    for split in ("train", "eval"):
        for i, r in enumerate(everyday_rows(split, seed)):  # type: ignore[arg-type]
            part = "heldout" if split == "eval" else _split(r["prompt"], seed)
            src = f"everyday:{r['family']}:{i}"
            out.append(Example(r["prompt"], r["response"], 0, "benign", part, src))
            out.append(Example(r["prompt"], None, 0, "benign_prompt", part, src))
    return out


def filter_examples(
    seed: int = 0, n_benign: int = 3000, contrast: bool = True, everyday: bool = True, **options: Any
) -> list[Example]:
    """The default offline sources (``DEFAULT_DATA_OPTIONS`` unless given) plus the contrast data
    and the everyday how-to requests."""
    opts = {**DEFAULT_DATA_OPTIONS, **options}
    out = default_examples(seed, n_benign, **opts)
    return out + (contrast_examples(seed) if contrast else []) + (everyday_examples(seed) if everyday else [])
