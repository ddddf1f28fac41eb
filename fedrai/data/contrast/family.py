"""A contrast row and the template family it is generated from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

Split = Literal["train", "eval"]
Kind = Literal["safe_alarming", "harmful", "borderline"]
LICENCE = "Apache-2.0"


class ContrastRow(TypedDict):
    """One row. ``label`` 1 = the exchange (or prompt, for ``harmful``) is unsafe to comply with."""

    prompt: str
    response: str
    kind: str  # safe_alarming | harmful (response = refusal) | borderline
    label: int  # prompt label: 1 for harmful prompts; the response is always safe
    family: str
    source: str
    licence: str
    split: str


@dataclass(frozen=True)
class Family:
    """A template group: prompts = templates x items; answers built from the item's fragment."""

    name: str
    kind: Kind
    prompts: tuple[str, ...]  # with {x}
    items: tuple[tuple[str, str], ...]  # (slot text, answer fragment / harm phrase)
    answers: tuple[str, ...] = ()  # with {x} and {a}; harmful families use harm_naming_refusal
