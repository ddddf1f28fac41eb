"""Refusal texts for the `refuse` action, each grounded in a named principle.

The CAI engineer's constitution (``fedrai.safety.cai``) can supply its own text through
``screen_rows(..., refusal_text_fn=...)``; these templates are the stand-alone default.
They are deliberately varied and short: DESIGN.md notes that one fixed refusal teaches a
small model to refuse everything.
"""

from __future__ import annotations

import hashlib

# principle -> refusal templates ("{topic}" is not used on purpose: we never echo harmful text)
PRINCIPLES: dict[str, list[str]] = {
    "harmlessness": [
        "I can't help with that, because it could lead to serious harm to people. "
        "If you have a related question about safety or prevention, I'm glad to help with that.",
        "I'm not able to assist with this request: it risks hurting someone. "
        "Is there something else I can help you with?",
    ],
    "legality": [
        "I can't help with this, since it would facilitate illegal activity. "
        "I'm happy to explain the relevant laws or point you to legitimate resources instead.",
        "Sorry, I won't provide that: it involves breaking the law and could harm others.",
    ],
    "privacy": [
        "I can't help with that, because it would intrude on someone's privacy. "
        "If you're worried about your own data, I can suggest ways to protect it.",
    ],
    "respect": [
        "I won't write that: it demeans people based on who they are. "
        "I'd be glad to help with a respectful version of your request.",
    ],
    "self_care": [
        "I'm not able to help with that, but I'm concerned about your safety. "
        "If you're going through a hard time, please reach out to someone you trust or a local crisis line.",
    ],
    "honesty": [
        "I can't help create misleading or deceptive content. "
        "I can help you write something accurate and persuasive instead.",
    ],
}

# Llama Guard categories (and the embedded filter's None) mapped to the principle they violate.
CATEGORY_PRINCIPLE: dict[str, str] = {
    "S1": "harmlessness",
    "S2": "legality",
    "S3": "legality",
    "S4": "legality",
    "S5": "honesty",
    "S6": "harmlessness",
    "S7": "privacy",
    "S8": "legality",
    "S9": "harmlessness",
    "S10": "respect",
    "S11": "self_care",
    "S12": "respect",
    "S13": "honesty",
    "S14": "harmlessness",
    "identity_attack": "respect",
    "insult": "respect",
    "threat": "harmlessness",
}


def principle_for(category: str | None) -> str:
    """The principle a flagged category violates (harmlessness when unknown)."""
    return CATEGORY_PRINCIPLE.get(category or "", "harmlessness")


def default_refusal(prompt: str, category: str | None) -> str:
    """A refusal for ``prompt`` grounded in the principle of ``category``; stable per prompt."""
    templates = PRINCIPLES[principle_for(category)]
    digest = hashlib.sha256(prompt.encode("utf-8", "replace")).digest()
    return templates[digest[0] % len(templates)]
