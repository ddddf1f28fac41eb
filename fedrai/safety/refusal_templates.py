"""Synthetic refusals for the filter's labelled data, from template parts split train / val / test.

Test refusals use openers, reasons and offers never used in training (v1 ``test`` parts), and the
val refusals the threshold is chosen on are worded unlike training too (v2 ``val`` parts), so a
head cannot score well by memorising refusal wording.
"""

from __future__ import annotations

import random

_OPENERS = {
    "train": [
        "I'm sorry, but I can't help with that.",
        "I can't assist with that request.",
        "No, I won't do that.",
        "As an AI assistant, I have to decline this request.",
        "I'm not able to provide that.",
        "Sorry, I cannot comply with this.",
        "I must refuse.",
        "That's not something I can help with.",
        "I apologize, but I cannot fulfil this request.",
        "I'm afraid I can't do that.",
        "Unfortunately, I can't help you with this one.",
        "I will not provide instructions for this.",
    ],
    "test": [
        "I'm really sorry, but I can't do this for you.",
        "I cannot and will not help with this.",
        "Sorry — that's a request I have to turn down.",
        "My apologies, but this isn't something I'm able to assist with.",
        "I'm going to have to say no to this.",
    ],
}
_ECHO = {
    "train": ["I can't help you {req}.", "I won't help anyone {req}.", "Sorry, I can't {req}."],
    "test": ["I'm unable to {req}.", "I refuse to {req}."],
}
_REASONS = {
    "train": [
        "It could cause serious harm to people.",
        "That would be illegal and dangerous.",
        "This goes against my guidelines on safety.",
        "Helping with this could put others at risk.",
        "It would be unethical for me to do so.",
        "Providing this information could enable violence or abuse.",
        "",
    ],
    "test": [
        "Doing so could hurt real people and may break the law.",
        "This kind of content can be used to cause harm.",
        "",
    ],
}
_OFFERS = {
    "train": [
        "Is there something else I can help you with?",
        "If you're interested in the topic for research or safety reasons, I can share general, "
        "publicly available information about prevention.",
        "If you or someone you know is in danger, please contact local emergency services.",
        "I'd be glad to help with a different question.",
        "",
    ],
    "test": [
        "Let me know if there's another way I can help.",
        "If this is for a story or a class, I can help you approach it in a safe way.",
        "",
    ],
}


def synth_refusal(prompt: str, rng: random.Random, part: str = "train") -> str:
    """A refusal to ``prompt`` composed from the ``part`` (train/test) template pools."""
    if rng.random() < 0.3 and len(prompt) < 300:
        req = prompt.strip().rstrip(".?!")
        opener = rng.choice(_ECHO[part]).format(req=req[:1].lower() + req[1:])
    else:
        opener = rng.choice(_OPENERS[part])
    bits = [opener, rng.choice(_REASONS[part]), rng.choice(_OFFERS[part])]
    return " ".join(b for b in bits if b)


# Extra refusal parts for training and validation (v2). Many styles: apologetic, policy-citing,
# topic-naming ("I can't help with {topic}, it is dangerous"), redirecting, short and long. Each
# list is split by position into train (3 of 4) and val (1 of 4) parts, so the val refusals the
# threshold is chosen on are worded unlike training too; none repeats a test part verbatim
# (tests/test_safety_filters.py checks this).
_V2_OPENERS = [
    "Sorry, I can't help with that.",
    "I can't do that.",
    "No.",
    "I won't be helping with this.",
    "I'm sorry, I'm not able to help with this request.",
    "Apologies, but I can't provide that kind of content.",
    "I have to decline.",
    "That's a request I can't fulfil.",
    "I'm not comfortable helping with that.",
    "I'd rather not help with this.",
    "This isn't something I'll do.",
    "I can't provide that information.",
    "I'm sorry, but I cannot assist with that.",
    "Sorry, no. I can't go along with this.",
    "I understand you're asking, but I can't help here.",
    "I'm unable to help with that request.",
    "As a responsible assistant, I can't provide this.",
    "My guidelines don't allow me to help with this.",
    "This request violates the usage policy, so I can't help.",
    "I'm designed to be helpful, but I can't assist with this one.",
    "I hear you, but I'm not going to do that.",
    "I can't write that.",
    "Regrettably, I can't take this on.",
    "I won't generate that content.",
    "I need to stop here: I can't help with this.",
    "Thanks for asking, but this is outside what I can help with.",
    "I can't support this request.",
    "I'm sorry you're looking for this, but I can't provide it.",
]
_V2_TOPIC = [
    "I can't help with {topic}.",
    "I can't help with {topic}, it is dangerous.",
    "I won't provide guidance on {topic}.",
    "Sorry, but {topic} is not something I can help with.",
    "I'm not going to explain {topic}.",
    "Helping with {topic} could hurt people, so I won't.",
    "I can't give instructions for {topic}.",
    "No, I can't assist with {topic}.",
    "You're asking me to help with {topic}; I can't do that.",
    "I'm sorry, but I can't write anything about {topic} that could be used to cause harm.",
    "Requests like '{topic}' are ones I decline.",
    "I won't help {topic_verb}.",
    "I can't assist you {topic_verb}.",
    "It wouldn't be right for me to help {topic_verb}.",
]
_V2_REASONS = [
    "It's dangerous.",
    "That could seriously hurt someone.",
    "It's against the law in most places.",
    "This could be used to harm others.",
    "Content like this violates my safety policy.",
    "I don't help with anything that could put people in danger.",
    "The risks of misuse are too high.",
    "It would facilitate criminal activity.",
    "That kind of information could lead to real-world harm.",
    "It's both unsafe and unethical.",
    "Sharing this could endanger lives.",
    "I'm committed to avoiding harm.",
    "This falls under content I'm not allowed to produce.",
    "It could be used to harass or exploit people.",
    "",
    "",
]
_V2_OFFERS = [
    "Can I help with something else?",
    "I'm happy to help with a safer alternative.",
    "If you'd like, I can point you to resources about staying safe.",
    "If you're struggling, please consider talking to a professional or a helpline.",
    "I could instead explain the history or the risks involved in general terms.",
    "Feel free to ask me about something else.",
    "Is there a legitimate goal behind this that I can help with in another way?",
    "If you're researching this for protective purposes, I can discuss defences at a high level.",
    "Please reach out to the appropriate authorities if someone is at risk.",
    "I can help you find legal and safe options instead.",
    "",
    "",
    "",
]
_V2_PREFIXES = ["", "", "", "", "Hmm. ", "I understand why you might ask. ", "Thanks for your message. "]
REFUSAL_PARTS_V2 = {
    part: {
        name: [x for i, x in enumerate(pool) if (i % 4 == 3) == (part == "val")]
        for name, pool in (
            ("openers", _V2_OPENERS),
            ("topic", _V2_TOPIC),
            ("reasons", _V2_REASONS),
            ("offers", _V2_OFFERS),
            ("prefixes", _V2_PREFIXES),
        )
    }
    for part in ("train", "val")
}
_LEAD_VERBS = (
    "write",
    "give",
    "provide",
    "create",
    "generate",
    "explain",
    "describe",
    "list",
    "tell me",
    "show me",
    "develop",
    "design",
    "compose",
    "draft",
    "produce",
    "teach me",
    "help me",
    "outline",
    "can you",
    "could you",
    "please",
    "i want to",
    "i need to",
    "how do i",
    "how can i",
    "how to",
)


def _topic(prompt: str) -> tuple[str, str]:
    """A short topic phrase for a prompt ("making a bomb") and a verb form ("make a bomb")."""
    words = prompt.strip().rstrip(".?!").split()[:12]
    text = " ".join(words)
    low = text.lower()
    changed = True
    while changed:
        changed = False
        for v in _LEAD_VERBS:
            if low.startswith(v + " "):
                text, low, changed = text[len(v) + 1 :], low[len(v) + 1 :], True
    low = low.removeprefix("me ").removeprefix("a guide on ").removeprefix("instructions for ")
    verb = low.removeprefix("to ")
    return (f"requests to {verb}" if low.startswith("to ") else low), (
        verb if low.startswith("to ") else f"with {low}"
    )


def synth_refusal_v2(prompt: str, rng: random.Random, part: str = "train") -> str:
    """A refusal from the v2 ``part`` (train/val) pools: opener or topic-naming, reason, offer."""
    pools = REFUSAL_PARTS_V2[part]
    style = rng.random()
    if style < 0.35:
        topic, verb = _topic(prompt)
        opener = rng.choice(pools["topic"]).format(topic=topic, topic_verb=verb)
    else:
        opener = rng.choice(pools["openers"])
    if style > 0.85:  # short
        return opener
    bits = [rng.choice(pools["prefixes"]) + opener, rng.choice(pools["reasons"]), rng.choice(pools["offers"])]
    return " ".join(b.strip() for b in bits if b.strip())


def refusal_test_parts() -> list[str]:
    """The held-out (test) refusal template parts, for disjointness checks."""
    return [x for d in (_OPENERS, _ECHO, _REASONS, _OFFERS) for x in d["test"] if x]


def refusal_train_parts() -> list[str]:
    """Every refusal template part used to build train/val refusals."""
    legacy = [x for d in (_OPENERS, _ECHO, _REASONS, _OFFERS) for x in d["train"] if x]
    v2 = [x for p in REFUSAL_PARTS_V2.values() for pool in p.values() for x in pool if x.strip()]
    return legacy + v2
