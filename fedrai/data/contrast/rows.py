"""Row generation: templates x items per family, whole families held out for eval, seeded."""

from __future__ import annotations

import random
import re

from fedrai.data.contrast.borderline_families import BORDERLINE_FAMILIES
from fedrai.data.contrast.family import LICENCE, ContrastRow, Family, Kind, Split
from fedrai.data.contrast.harmful_families import HARMFUL_FAMILIES
from fedrai.data.contrast.refusals import harm_naming_refusal
from fedrai.data.contrast.safe_eval_families import SAFE_EVAL_FAMILIES
from fedrai.data.contrast.safe_families import SAFE_TRAIN_FAMILIES

SAFE_FAMILIES: tuple[Family, ...] = SAFE_TRAIN_FAMILIES + SAFE_EVAL_FAMILIES
FAMILIES: tuple[Family, ...] = SAFE_FAMILIES + HARMFUL_FAMILIES + BORDERLINE_FAMILIES
EVAL_FAMILIES: frozenset[str] = frozenset(
    {
        "photography",
        "games_strategy",
        "cooking_kitchen",
        "legal_questions",
        "sports_fitness",
        "language_idioms",
        "sensitive_topics",
        "harm_harassment",
        "harm_self",
        "borderline_health",
        "borderline_law_crime",
    }
)


def norm(text: str) -> str:
    """Normalised text for disjointness checks (lower case, single spaces, no trailing punctuation)."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _family_rows(family: Family, rng: random.Random, split: Split) -> list[ContrastRow]:
    rows: list[ContrastRow] = []
    for x, a in family.items:
        for template in family.prompts:
            prompt = template.format(x=x)
            if family.kind == "harmful":
                response, label = harm_naming_refusal(prompt, rng, split, harm=a), 1
            else:
                response, label = rng.choice(family.answers).format(x=x, a=a), 0
            rows.append(
                ContrastRow(
                    prompt=prompt,
                    response=response,
                    kind=family.kind,
                    label=label,
                    family=family.name,
                    source=f"template:{family.name}",
                    licence=LICENCE,
                    split=split,
                )
            )
    return rows


def _rows(kind: Kind, split: Split, seed: int) -> list[ContrastRow]:
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    eval_prompts = {
        norm(r["prompt"])
        for f in FAMILIES
        if f.name in EVAL_FAMILIES
        for r in _family_rows(f, random.Random(0), "eval")
    }
    out: list[ContrastRow] = []
    for family in FAMILIES:
        if family.kind != kind or (family.name in EVAL_FAMILIES) != (split == "eval"):
            continue
        rng = random.Random(f"{seed}:{family.name}")
        rows = _family_rows(family, rng, split)
        if split == "train":
            rows = [r for r in rows if norm(r["prompt"]) not in eval_prompts]
        out.extend(rows)
    random.Random(seed).shuffle(out)
    return out


def safe_alarming_prompts(split: Split = "train", seed: int = 0) -> list[ContrastRow]:
    """Safe prompts that use alarming words, each with a helpful answer (label 0)."""
    return _rows("safe_alarming", split, seed)


def harmful_prompts(split: Split = "train", seed: int = 0) -> list[ContrastRow]:
    """Harmful prompts (label 1) on the same topics, each answered by a harm-naming refusal."""
    return _rows("harmful", split, seed)


def borderline_compliant(split: Split = "train", seed: int = 0) -> list[ContrastRow]:
    """Borderline questions where complying is fine, with a complying answer (label 0)."""
    return _rows("borderline", split, seed)


def contrast_rows(split: Split = "train", seed: int = 0) -> list[ContrastRow]:
    """Every contrast row of ``split``: safe-alarming, harmful + refusal, borderline-compliant."""
    return (
        safe_alarming_prompts(split, seed) + harmful_prompts(split, seed) + borderline_compliant(split, seed)
    )


def family_names(split: Split) -> list[str]:
    """The families of ``split`` (eval families are held out whole)."""
    return [f.name for f in FAMILIES if (f.name in EVAL_FAMILIES) == (split == "eval")]
