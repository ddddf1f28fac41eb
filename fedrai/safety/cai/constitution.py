"""The constitution: principles for critique-and-revise, and refusals for the fallback.

A constitution is a plain TOML (or YAML) file so that users can read, diff and replace it without
touching code. Loading validates everything up front (file, principle index, field) because a
typo found mid-round on a client is far more expensive than one found at start-up.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomllib

DEFAULT_CONSTITUTION = Path(__file__).with_name("constitution.toml")

_TOP_KEYS = {"name", "description", "principles", "refusals"}
_PRINCIPLE_KEYS = {"name", "critique", "revision", "keywords"}
_REFUSAL_KEYS = {"principle", "text"}


class ConstitutionError(ValueError):
    """A constitution file that cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True)
class Principle:
    """One critique request and the matching revision request."""

    name: str
    critique: str
    revision: str
    keywords: tuple[str, ...] = ()  # lower-case words that tie a prompt to this principle's refusals


@dataclass(frozen=True)
class Refusal:
    """A fallback answer, grounded in the principle it names."""

    principle: str
    text: str


@dataclass(frozen=True)
class Constitution:
    """Validated principles and refusals; ``source`` is where they were read from."""

    name: str
    principles: tuple[Principle, ...]
    refusals: tuple[Refusal, ...]
    source: str

    def schedule(
        self, n_rows: int, rounds: int, order: Literal["random", "sequence"], seed: int
    ) -> list[list[int]]:
        """Principle indices per row and revision round.

        ``random``: each (row, round) draws a principle with a seeded RNG (Bai et al. sample one
        per step). ``sequence``: round r applies principle r (cycling), the same for every row.
        """
        n = len(self.principles)
        if order == "sequence":
            return [[r % n for r in range(rounds)] for _ in range(n_rows)]
        rng = random.Random(seed)
        return [[rng.randrange(n) for _ in range(rounds)] for _ in range(n_rows)]

    def refusal_for(self, principle: int, rng: random.Random) -> str:
        """A refusal grounded in the given principle, or any refusal when it has none."""
        name = self.principles[principle].name
        matching = [r.text for r in self.refusals if r.principle == name]
        return rng.choice(matching or [r.text for r in self.refusals])

    def principle_for_prompt(self, prompt: str) -> int | None:
        """The first principle with a keyword in ``prompt`` (a word prefix, or a phrase), or None.

        Why: a refusal that names the concern of the request ("this would help hack someone's
        account") teaches a small model *what* to refuse, where one generic refusal teaches it to
        refuse everything.
        """
        low = prompt.lower()
        words = re.findall(r"[a-z][a-z-]*", low)
        for i, principle in enumerate(self.principles):
            for k in principle.keywords:
                if (" " in k and k in low) or any(w.startswith(k) for w in words):
                    return i
        return None

    def refusal_for_prompt(self, prompt: str, rng: random.Random, fallback: int | None = None) -> str:
        """A refusal naming the concern of ``prompt`` (its keyword principle), else ``fallback``'s."""
        matched = self.principle_for_prompt(prompt)
        if matched is not None:
            return self.refusal_for(matched, rng)
        if fallback is not None:
            return self.refusal_for(fallback, rng)
        return rng.choice([r.text for r in self.refusals])

    def refusal_text(self, prompt: str, category: str | None = None) -> str:
        """A refusal for the filter's ``refuse`` action: deterministic per prompt (stable hash), so
        reruns train on the same text; varied across prompts, so one template is not learnt for all.
        ``category`` is accepted for the filter's call signature and not used."""
        digest = hashlib.sha256(prompt.encode("utf-8")).digest()
        return self.refusals[int.from_bytes(digest[:4], "big") % len(self.refusals)].text


def load_constitution(path: str | Path | None = None) -> Constitution:
    """Read and validate a constitution (TOML, or YAML by extension); ``None`` = the shipped one."""
    file = Path(path) if path is not None else DEFAULT_CONSTITUTION
    if not file.is_file():
        raise ConstitutionError(f"{file}: constitution file not found")
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise ConstitutionError(f"{file}: cannot parse: {err}") from None
    except Exception as err:  # yaml.YAMLError without importing yaml at module level
        raise ConstitutionError(f"{file}: cannot parse: {err}") from None
    return parse_constitution(data, origin=str(file))


def parse_constitution(data: Any, origin: str = "constitution") -> Constitution:
    """Validate an already-parsed mapping (used by :func:`load_constitution` and tests)."""
    if not isinstance(data, dict):
        raise ConstitutionError(f"{origin}: expected a table/mapping at the top level")
    _no_unknown(data, _TOP_KEYS, origin)
    raw_principles = data.get("principles")
    if not isinstance(raw_principles, list) or not raw_principles:
        raise ConstitutionError(f"{origin}: needs a non-empty list 'principles' ([[principles]] in TOML)")
    principles: list[Principle] = []
    for i, entry in enumerate(raw_principles):
        where = f"{origin}: principles[{i}]"
        if not isinstance(entry, dict):
            raise ConstitutionError(f"{where}: expected a table with name, critique, revision")
        _no_unknown(entry, _PRINCIPLE_KEYS, where)
        critique = _text(entry, "critique", where)
        revision = _text(entry, "revision", where)
        name = _text(entry, "name", where) if "name" in entry else f"principle-{i}"
        keywords = entry.get("keywords", [])
        if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
            raise ConstitutionError(f"{where}.keywords: expected a list of non-empty strings")
        principles.append(
            Principle(
                name=name,
                critique=critique,
                revision=revision,
                keywords=tuple(k.strip().lower() for k in keywords),
            )
        )
    names = [p.name for p in principles]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConstitutionError(f"{origin}: duplicate principle names: {', '.join(dupes)}")

    raw_refusals = data.get("refusals")
    if not isinstance(raw_refusals, list) or not raw_refusals:
        raise ConstitutionError(
            f"{origin}: needs a non-empty list 'refusals' ([[refusals]] in TOML) for the refuse fallback"
        )
    refusals: list[Refusal] = []
    for i, entry in enumerate(raw_refusals):
        where = f"{origin}: refusals[{i}]"
        if not isinstance(entry, dict):
            raise ConstitutionError(f"{where}: expected a table with principle, text")
        _no_unknown(entry, _REFUSAL_KEYS, where)
        principle = _text(entry, "principle", where)
        if principle not in names:
            raise ConstitutionError(
                f"{where}.principle: {principle!r} is not a principle name (known: {', '.join(names)})"
            )
        refusals.append(Refusal(principle=principle, text=_text(entry, "text", where)))
    name = data.get("name", Path(origin).stem)
    if not isinstance(name, str):
        raise ConstitutionError(f"{origin}: name: expected a string")
    return Constitution(name=name, principles=tuple(principles), refusals=tuple(refusals), source=origin)


def _no_unknown(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConstitutionError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    if key not in entry:
        raise ConstitutionError(f"{where}: missing field '{key}'")
    value = entry[key]
    if not isinstance(value, str):
        raise ConstitutionError(f"{where}.{key}: expected a string, got {type(value).__name__}")
    if not value.strip():
        raise ConstitutionError(f"{where}.{key}: empty")
    return value.strip()
