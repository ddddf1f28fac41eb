"""Train the embedded filter's head (`fedrai safety train-filter`) and report held-out figures.

The default training data is built from the offline assets (DESIGN.md), labelled for the
in-context judgement the paper's filter made:

* ``harmful_compliant`` (unsafe): pyrit harmful-pairs rows whose answer is labelled Harmful;
  with the default ``DEFAULT_DATA_OPTIONS`` also pyrit's human-labelled scorer evals: objective
  evals whose harmful objective was achieved, harm evals rated >= 0.75 (of 1).
* ``harmful_safe_answer`` (safe): pyrit harmful-pairs rows labelled Not harmful (and scorer-eval
  rows whose objective was not achieved / rated harm 0).
* ``refusal`` (safe): refusals to HarmBench / StrongREJECT (and scorer-eval) prompts, composed
  from varied parts, plus the human-labelled refusals of pyrit's refusal evals.
* ``benign`` (safe): instructlab instruction pairs; ``benign_refusal`` (safe): refusals to
  benign prompts (over-refusal is unhelpful, not unsafe).
* the prompt head: harmful prompts (HarmBench, StrongREJECT, harmful-pairs, scorer-eval
  objectives) against benign ones.

Rows are split by their normalised prompt (train 60 / val 20 / test 20), so no test prompt is
ever seen in training in any form. Refusal *templates* are split too: test refusals use openers,
reasons and offers never used in training. AdvBench is test-only (refusals to it and, for the
prompt head, its prompts; pyrit's human refusals to AdvBench prompts are test rows too). Hyper-parameters and the threshold are chosen on val; test is read once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedrai.safety.filters.embedded import FEATURES, MODES, STACKED, Encoder, Head, LinearHead, embed_features

SAFE_SETS = ("benign", "refusal", "benign_refusal", "harmful_safe_answer")


@dataclass
class Example:
    """One labelled row: label 1 = unsafe. ``response`` is None for prompt-only rows."""

    prompt: str
    response: str | None
    label: int
    set: str
    split: str = "train"
    source: str = ""


# --------------------------------------------------------------------------- refusal synthesis
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
_REFUSAL_PARTS_V2 = {
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
    pools = _REFUSAL_PARTS_V2[part]
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
    v2 = [x for p in _REFUSAL_PARTS_V2.values() for pool in p.values() for x in pool if x.strip()]
    return legacy + v2


# --------------------------------------------------------------------------- default data
def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _split_of(prompt: str, seed: int) -> str:
    h = int.from_bytes(hashlib.sha256(f"{seed}:{_norm(prompt)}".encode()).digest()[:4], "big") % 100
    return "train" if h < 60 else ("val" if h < 80 else "test")


def _harmful_label(text: str) -> int | None:
    t = text.strip().lstrip("'\"*").lower()
    t = t.removeprefix("answer:").strip().lstrip("'\"*")
    if t.startswith("not harmful"):
        return 0
    if t.startswith("harmful"):
        return 1
    return None


def _read_csv_skipping_comments(path: str) -> list[dict[str, str]]:
    text = Path(path).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith("#")]
    return list(csv.DictReader(io.StringIO("".join(lines))))


def default_examples(
    seed: int = 0,
    n_benign: int = 3000,
    extra_refusals: int = 3,
    *,
    eval_categories: tuple[str, ...] | list[str] = (),
    harm_evals: bool = False,
    truncations: int = 0,
) -> list[Example]:
    """The default labelled set from the offline assets (fetched on first use).

    The rows of the original sources come first and do not depend on the options below (same
    splits, same synthetic refusals), so figures stay comparable across options:

    * ``eval_categories``: add pyrit's objective scorer evals of these harm categories
      (``OBJECTIVE_EVAL_CATEGORIES``): achieved (human 1) = ``harmful_compliant``, not achieved
      (human 0) = ``harmful_safe_answer``; each new prompt also gets prompt-only and refusal rows.
    * ``harm_evals``: add pyrit's harm scorer evals (human harm 0-1): >= 0.75 ``harmful_compliant``,
      0 ``harmful_safe_answer`` (in between: skipped).
    * ``truncations``: per train ``harmful_compliant`` row, up to this many copies with the answer
      cut to its first sentences (short compliant answers are otherwise missed). Train only.

    New rows are split by normalised prompt like the rest, so their val/test parts are held out too.
    """
    import yaml

    from fedrai.assets import resolve

    rng = random.Random(seed)
    out: list[Example] = []

    pairs = json.loads(Path(resolve("embedded:harmful-pairs")).read_text(encoding="utf-8"))
    harmful_prompts: list[tuple[str, str]] = []
    for i, row in enumerate(pairs):
        label = _harmful_label(str(row.get("category", "")))
        prompt, answer = str(row.get("user", "")), str(row.get("assistant", ""))
        if label is None or not prompt.strip() or not answer.strip():
            continue
        out.append(
            Example(
                prompt,
                answer,
                label,
                "harmful_compliant" if label else "harmful_safe_answer",
                source=f"harmful-pairs:{i}",
            )
        )
        harmful_prompts.append((prompt, f"harmful-pairs:{i}"))
    hb = Path(resolve("embedded:harmbench")).read_text(encoding="utf-8").splitlines()
    harmful_prompts += [(p.strip(), f"harmbench:{i}") for i, p in enumerate(hb) if p.strip()]
    sr = _read_csv_skipping_comments(resolve("embedded:strongreject"))
    harmful_prompts += [(r["forbidden_prompt"].strip(), f"strongreject:{i}") for i, r in enumerate(sr)]

    seen: set[str] = set()
    for prompt, src in harmful_prompts:
        key = _norm(prompt)
        if key in seen:
            continue
        seen.add(key)
        out.append(Example(prompt, None, 1, "harmful_prompt", source=src))
        out.append(Example(prompt, "", 0, "refusal", source=src))  # response filled after the split

    for i, r in enumerate(_read_csv_skipping_comments(resolve("embedded:refusal-evals"))):
        if r.get("human_score", "").strip() == "1" and r.get("assistant_response", "").strip():
            out.append(
                Example(r["objective"], r["assistant_response"], 0, "refusal", source=f"refusal-evals:{i}")
            )

    lines = Path(resolve("embedded:instructlab")).read_text(encoding="utf-8").splitlines()
    picked = rng.sample(range(len(lines)), min(n_benign + n_benign // 10, len(lines)))
    for k, li in enumerate(picked):
        msgs = json.loads(lines[li]).get("messages", [])
        user = next((m["content"] for m in reversed(msgs) if m.get("role") == "user"), "")
        answer = next((m["content"] for m in reversed(msgs) if m.get("role") == "assistant"), "")
        if not user.strip() or not answer.strip():
            continue
        src = f"instructlab:{li}"
        if k < n_benign:
            out.append(Example(user, answer, 0, "benign", source=src))
            out.append(Example(user, None, 0, "benign_prompt", source=src))
        else:
            out.append(Example(user, "", 0, "benign_refusal", source=src))

    for ex in out:
        ex.split = _split_of(ex.prompt, seed)
    # AdvBench: test only, never trained on; drop any prompt that also occurs above.
    adv = yaml.safe_load(Path(resolve("embedded:advbench")).read_text(encoding="utf-8"))
    for i, s in enumerate(adv.get("seeds", [])):
        prompt = str(s.get("value", "")).strip()
        if not prompt or _norm(prompt) in seen:
            continue
        out.append(Example(prompt, None, 1, "harmful_prompt", "test", f"advbench:{i}"))
        out.append(Example(prompt, "", 0, "refusal", "test", f"advbench:{i}"))
    # pyrit's human-labelled refusals answer some AdvBench prompts too: those rows go to test
    # (they draw no random numbers, so every other row is unchanged)
    adv_prompts = {_norm(e.prompt) for e in out if e.source.startswith("advbench")}
    for ex in out:
        if not ex.source.startswith("advbench") and _norm(ex.prompt) in adv_prompts:
            ex.split = "test"
    for ex in out:
        if ex.response == "":
            ex.response = synth_refusal(ex.prompt, rng, "test" if ex.split == "test" else "train")
    # v2 refusals (own rng, so the test rows above are unchanged): val refusals to harmful prompts
    # are re-worded from the val-only parts (the threshold is then chosen on unseen wording), and
    # each train harmful prompt gets ``extra_refusals`` more refusals from the train parts.
    rng2 = random.Random(seed + 7919)
    extra: list[Example] = []
    for ex in out:
        if ex.set != "refusal" or ex.source.startswith("refusal-evals") or ex.split == "test":
            continue
        if ex.split == "val":
            ex.response = synth_refusal_v2(ex.prompt, rng2, "val")
        else:
            for k in range(extra_refusals):
                extra.append(
                    Example(
                        ex.prompt,
                        synth_refusal_v2(ex.prompt, rng2, "train"),
                        0,
                        "refusal",
                        "train",
                        f"{ex.source}:v2:{k}",
                    )
                )
    out += extra
    if eval_categories or harm_evals:
        out += _eval_examples(seed, out, eval_categories, harm_evals, extra_refusals)
    if truncations:
        out += truncated_copies(out, truncations)
    return out


# pyrit objective scorer-eval files, one per harm category. CLEAR_HARM_CATEGORIES: those where
# "objective achieved" means harmful content. The other five hold many borderline objectives
# ("argue that one university is better", "what software edits beach photos"); adding them raised
# val recall a little but flagged short benign instructions (MADE.md beside the shipped head).
CLEAR_HARM_CATEGORIES = (
    "chemical_biological",
    "cyber",
    "exploits",
    "harassment_bullying",
    "hate_speech",
    "illegal_activity",
    "phishing",
    "self_harm",
    "violence",
)
OBJECTIVE_EVAL_CATEGORIES = (
    *CLEAR_HARM_CATEGORIES,
    "bias",
    "info_integrity",
    "misinformation",
    "privacy",
    "sexual",
)
# what the shipped head was trained on (train_filter's default); chosen on val, MADE.md beside it
DEFAULT_DATA_OPTIONS: dict[str, Any] = {
    "eval_categories": list(CLEAR_HARM_CATEGORIES),
    "harm_evals": False,
    "truncations": 1,
}


def _eval_examples(
    seed: int,
    existing: list[Example],
    categories: tuple[str, ...] | list[str],
    harm_evals: bool,
    extra_refusals: int,
) -> list[Example]:
    """Human-labelled (prompt, response) rows from pyrit's scorer evals, plus prompt-only and
    refusal rows for their new prompts (own rng: nothing above changes)."""
    import yaml

    from fedrai.assets import resolve

    rng = random.Random(seed + 104729)
    adv = yaml.safe_load(Path(resolve("embedded:advbench")).read_text(encoding="utf-8"))
    test_only = {_norm(str(x.get("value", ""))) for x in adv.get("seeds", [])}  # AdvBench stays test-only
    known = {_norm(e.prompt) for e in existing if e.set == "harmful_prompt"}
    pairs_seen = {(_norm(e.prompt), _norm(e.response or "")) for e in existing}
    rows: list[tuple[str, str, int, str]] = []
    if categories:
        root = Path(resolve("embedded:objective-evals"))
        for cat in categories:
            for i, r in enumerate(_read_csv_skipping_comments(str(root / f"{cat}.csv"))):
                score = str(r.get("human_score", "")).strip()
                if score in ("0", "1"):
                    rows.append(
                        (r["objective"], r["assistant_response"], int(score), f"objective-evals:{cat}:{i}")
                    )
    if harm_evals:
        root = Path(resolve("embedded:harm-evals"))
        for path in sorted(root.glob("*.csv")):
            for i, r in enumerate(_read_csv_skipping_comments(str(path))):
                scores = [float(v) for k, v in r.items() if k.startswith("human_score") and v and v.strip()]
                if not scores:
                    continue
                harm = sum(scores) / len(scores)
                if harm >= 0.75 or harm == 0:
                    rows.append(
                        (
                            r["objective"],
                            r["assistant_response"],
                            int(harm >= 0.75),
                            f"harm-evals:{path.stem}:{i}",
                        )
                    )
    out: list[Example] = []
    new_prompts: dict[str, tuple[str, str]] = {}
    for prompt, answer, label, src in rows:
        key = (_norm(prompt), _norm(answer))
        if not prompt.strip() or not answer.strip() or key[0] in test_only or key in pairs_seen:
            continue
        pairs_seen.add(key)
        split = _split_of(prompt, seed)
        out.append(
            Example(
                prompt, answer, label, "harmful_compliant" if label else "harmful_safe_answer", split, src
            )
        )
        if key[0] not in known:
            new_prompts.setdefault(key[0], (prompt, src))
    for prompt, src in new_prompts.values():
        split = _split_of(prompt, seed)
        out.append(Example(prompt, None, 1, "harmful_prompt", split, src))
        if split == "test":
            out.append(Example(prompt, synth_refusal(prompt, rng, "test"), 0, "refusal", split, src))
        elif split == "val":
            out.append(Example(prompt, synth_refusal_v2(prompt, rng, "val"), 0, "refusal", split, src))
        else:
            out.append(Example(prompt, synth_refusal(prompt, rng, "train"), 0, "refusal", split, src))
            for k in range(extra_refusals):
                out.append(
                    Example(
                        prompt, synth_refusal_v2(prompt, rng, "train"), 0, "refusal", split, f"{src}:v2:{k}"
                    )
                )
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")


def truncate_answer(text: str, budget: int) -> str:
    """``text`` cut to whole sentences (or lines) within ``budget`` characters; at least the
    first sentence, cut at a word boundary when that alone is longer."""
    parts = [x.strip() for x in _SENTENCE_END.split(text.strip()) if x.strip()]
    out = ""
    for part in parts:
        nxt = f"{out} {part}".strip()
        if len(nxt) > budget and out:
            break
        out = nxt
        if len(out) > budget:
            out = out[:budget].rsplit(" ", 1)[0]
            break
    return out


TRUNCATION_BUDGETS = (160, 400, 90)


def truncated_copies(examples: list[Example], n: int) -> list[Example]:
    """Train ``harmful_compliant`` rows with the answer cut to ``TRUNCATION_BUDGETS[:n]``
    characters of whole sentences (copies that are not clearly shorter are skipped)."""
    out: list[Example] = []
    for ex in examples:
        if ex.set != "harmful_compliant" or ex.split != "train" or not ex.response:
            continue
        kept: set[str] = set()
        for k, budget in enumerate(TRUNCATION_BUDGETS[:n]):
            short = truncate_answer(ex.response, budget)
            if len(short) >= 40 and len(short) <= 0.8 * len(ex.response) and short not in kept:
                kept.add(short)
                out.append(
                    Example(ex.prompt, short, 1, "harmful_compliant", "train", f"{ex.source}:trunc{k}")
                )
    return out


def load_labelled_jsonl(path: str | Path, seed: int = 0) -> list[Example]:
    """User labels: JSONL rows with ``prompt``, optional ``response``, ``label`` (1/0 or
    unsafe/safe) and optional ``split`` (train/val/test; default: by prompt hash)."""
    out: list[Example] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt = row["prompt"]
            response = row.get("response")
            raw = row["label"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{n}: expected JSON with prompt, label (and response): {err}") from None
        label = {"unsafe": 1, "safe": 0, "1": 1, "0": 0, "true": 1, "false": 0}.get(str(raw).lower())
        if (
            label is None
            or not isinstance(prompt, str)
            or not (response is None or isinstance(response, str))
        ):
            raise ValueError(f"{path}:{n}: label must be 0/1 or safe/unsafe; prompt/response strings")
        kind = "prompt_only" if not response else ("labelled_unsafe" if label else "labelled_safe")
        split = str(row.get("split") or _split_of(prompt, seed))
        out.append(Example(prompt, response or None, label, kind, split, f"{path}:{n}"))
    return out


# --------------------------------------------------------------------------- training
def _metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    pred = p >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": auc,
    }


def _rate(p: np.ndarray, threshold: float) -> float:
    return float(np.mean(p >= threshold)) if len(p) else float("nan")


def _choose_threshold(y: np.ndarray, p: np.ndarray, sets: list[str], max_fpr: float) -> float:
    """Lowest threshold whose val FPR is <= ``max_fpr`` on each guarded safe set (most recall).

    Guarded: ``benign`` and ``refusal`` (the sets the targets name) when present, else every
    safe set. If none reaches it, the threshold with the best F1."""
    safe_sets = sorted({s for s, lab in zip(sets, y, strict=True) if lab == 0})
    guarded = [s for s in safe_sets if s in ("benign", "refusal")] or safe_sets
    arr = np.array(sets)
    candidates = np.unique(np.concatenate([p, [0.5]]))
    best: float | None = None
    for t in candidates:  # ascending
        if all(_rate(p[(arr == s) & (y == 0)], t) <= max_fpr for s in guarded):
            best = float(t)
            break
    if best is None:
        best = max(candidates, key=lambda t: _metrics(y, p, t)["f1"])
    # put the threshold between this score and the next one down (a margin, not an exact hit)
    below = p[p < best]
    return float((best + below.max()) / 2) if len(below) else float(best)


def _logit(x: float) -> float:
    x = min(max(x, 1e-6), 1 - 1e-6)
    return float(np.log(x / (1 - x)))


def fit_mode(
    x: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    sets: dict[str, list[str]],
    kind: str,
    max_fpr: float,
    seed: int,
    set_weights: dict[str, float] | None = None,
    cs: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0),
) -> tuple[LinearHead, dict[str, Any]]:
    """Fit one mode's logistic regression (C and threshold on val) and fold the threshold
    into the bias so that 0.5 is the operating point."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils.class_weight import compute_sample_weight

    weight = compute_sample_weight("balanced", y["train"])  # = class_weight="balanced"
    for s, w in (set_weights or {}).items():
        weight = weight * np.where(np.array(sets["train"]) == s, w, 1.0)
    best: tuple[float, Any, float] | None = None
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=5000, random_state=seed)
        clf.fit(x["train"], y["train"], sample_weight=weight)
        pv = clf.predict_proba(x["val"])[:, 1]
        t = _choose_threshold(y["val"], pv, sets["val"], max_fpr)
        m = _metrics(y["val"], pv, t)
        score = m["recall"] + m["precision"] * 0.5 + m["auc"] * 0.1
        if best is None or score > best[0]:
            best = (score, clf, t)
    assert best is not None
    _, clf, t = best
    head = LinearHead(kind, clf.coef_[0].astype(np.float32), float(clf.intercept_[0]) - _logit(t))
    return head, {"C": float(clf.C), "val_threshold_raw": t}


def evaluate(
    head: LinearHead, x: np.ndarray, y: np.ndarray, sets: list[str], threshold: float = 0.5
) -> dict[str, Any]:
    """Overall precision/recall/F1/AUC plus the flag rate of every set."""
    p = head.predict_proba(x)
    arr = np.array(sets)
    out: dict[str, Any] = _metrics(y, p, threshold)
    out["flag_rate_by_set"] = {
        s: {"n": int(np.sum(arr == s)), "flag_rate": _rate(p[arr == s], threshold)} for s in sorted(set(sets))
    }
    return out


def train_filter(
    out_path: str | Path,
    *,
    data: str | Path | None = None,
    encoder: Encoder | None = None,
    encoder_ref: str = "embedded:minilm-l6-v2",
    max_seq_length: int = 128,
    encoder_dtype: str = "bfloat16",
    seed: int = 0,
    n_benign: int = 3000,
    max_fpr: float = 0.03,
    base_head: str | Path | None = None,
    embed_cache: str | Path | None = None,
    in_context_features: str = "auto",
    safe_answer_weight: float = 1.0,
    data_options: dict[str, Any] | None = None,
    examples: list[Example] | None = None,
    cs: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0),
    log=print,
) -> dict[str, Any]:
    """Train a head file at ``out_path`` (+ ``<out_path>.json`` record); return the record.

    ``examples`` (already built rows, e.g. ``fedrai.safety.filter_data.filter_examples``) take
    precedence over ``data``. ``data`` is a labelled JSONL (see :func:`load_labelled_jsonl`); without it the default
    offline sources are used. Modes the user data cannot train (no rows with both labels) keep
    the heads of ``base_head`` (default: the shipped head).

    ``in_context_features``: ``"auto"`` uses the stacked features (``STACKED``) when the data
    has prompt-only rows of both labels and refusal rows (the default data does), else the
    linear ``FEATURES["response_in_context"]``; or name a feature string.
    ``encoder_dtype`` is the encoder config the head will be served with (recorded in the head;
    the filter warns when it runs another): the head is fitted, thresholded and validated on
    embeddings computed that way.
    ``data_options`` are :func:`default_examples` keywords (default ``DEFAULT_DATA_OPTIONS``;
    recorded in the head so that the benchmark rebuilds the same splits).
    ``safe_answer_weight`` multiplies the training weight of ``harmful_safe_answer`` rows (safe
    answers to harmful prompts that are not refusals, mostly made-up lyrics and book passages
    answering HarmBench copyright requests); 1 (no extra weight) gave more val recall than the
    earlier 10 (MADE.md beside the shipped head).
    """
    from fedrai.safety.filters.embedded import SentenceEncoder

    t0 = time.time()
    data_options = dict(DEFAULT_DATA_OPTIONS if data_options is None else data_options)
    if examples is None:
        examples = (
            load_labelled_jsonl(data, seed) if data else default_examples(seed, n_benign, **data_options)
        )
    if encoder is None:
        encoder = SentenceEncoder(encoder_ref, max_seq_length, dtype=encoder_dtype)
    tag = encoder_tag(encoder_ref, max_seq_length, encoder_dtype)
    cached = _CachedEncoder(encoder, embed_cache, tag)  # modes share texts
    encoder = cached
    heads: dict[str, LinearHead] = {}
    record: dict[str, Any] = {
        "encoder": encoder_ref,
        "max_seq_length": max_seq_length,
        "encoder_dtype": encoder_dtype,
        "seed": seed,
        "max_val_fpr": max_fpr,
        "safe_answer_weight": safe_answer_weight,
        "n_benign": n_benign,
        "data_options": {} if data else data_options,
        "data": str(data) if data else "default offline sources (see fedrai/safety/train_head.py docstring)",
        "operating_point": "bias shifted so the val-chosen threshold is probability 0.5",
        "modes": {},
    }
    stackable = len({e.label for e in examples if e.response is None and e.split == "train"}) == 2 and any(
        e.set in ("refusal", "benign_refusal") and e.split == "train" for e in examples
    )
    ric_kind = (
        (STACKED if stackable else FEATURES["response_in_context"])
        if in_context_features == "auto"
        else (in_context_features)
    )
    record["modes_features"] = {**FEATURES, "response_in_context": ric_kind}
    for mode in MODES:
        kind = ric_kind if mode == "response_in_context" else FEATURES[mode]
        rows = [e for e in examples if (e.response is None) == (mode == "prompt")]
        by = {s: [e for e in rows if e.split == s] for s in ("train", "val", "test")}
        if any(len({e.label for e in by[s]}) < 2 for s in ("train", "val")):
            log(f"{mode}: not enough labelled rows of both classes; keeping the base head")
            continue
        stacked = any(n in ("hp", "cr") for n in kind.replace("*", ",").split(","))
        proj = _fit_projections(encoder, examples, by["train"], seed) if stacked else {}
        x, y, sets = {}, {}, {}
        for s, part in by.items():
            if not part:
                continue
            x[s] = embed_features(
                encoder,
                kind,
                [e.prompt for e in part],
                [e.response for e in part] if mode != "prompt" else [e.prompt for e in part],
                proj,
            )
            y[s] = np.array([e.label for e in part])
            sets[s] = [e.set for e in part]
        head, fit_info = fit_mode(
            x, y, sets, kind, max_fpr, seed, {"harmful_safe_answer": safe_answer_weight}, cs
        )
        head.proj = proj
        heads[mode] = head
        info: dict[str, Any] = {
            "features": kind,
            **fit_info,
            "sizes": {
                s: {k: sum(1 for e in part if e.set == k) for k in sorted({e.set for e in part})}
                for s, part in by.items()
            },
        }
        info["val"] = evaluate(head, x["val"], y["val"], sets["val"])
        if "test" in x:
            info["test"] = evaluate(head, x["test"], y["test"], sets["test"])
        record["modes"][mode] = info
        log(
            f"{mode}: val {_brief(info['val'])}"
            + (f" | test {_brief(info['test'])}" if "test" in info else "")
        )
    if len(heads) < len(MODES):
        base = Head.load(base_head)
        for mode in MODES:
            if mode not in heads and mode in base.heads:
                heads[mode] = base.heads[mode]
                record["modes"][mode] = {"kept_from": str(base_head or "shipped default head")}
    cached.save()
    record["train_seconds"] = round(time.time() - t0, 1)
    out_path = Path(out_path)
    Head(heads, {k: v for k, v in record.items() if k != "modes"}).save(out_path)
    out_path.with_suffix(".json").write_text(
        json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return record


def _fit_projections(
    encoder: Encoder, examples: list[Example], train_rows: list[Example], seed: int
) -> dict[str, np.ndarray]:
    """The stacked head's two projections, fitted on train rows only (C=1):
    ``hp`` harmful vs benign prompt (prompt-only rows, classes balanced), ``cr`` complied vs
    refused (responses; every set weighted equally, so the few harmful compliant answers count as
    much as the benign ones: otherwise harm vocabulary, frequent in topic-naming refusals and rare
    in compliant answers, reads as "refusal")."""
    from sklearn.linear_model import LogisticRegression

    def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        clf = LogisticRegression(C=1.0, class_weight=None if w is not None else "balanced", max_iter=3000)
        clf.fit(x, y, sample_weight=w)
        return np.concatenate([clf.coef_[0], clf.intercept_]).astype(np.float32)

    prompts = [e for e in examples if e.response is None and e.split == "train"]
    xp = embed_features(encoder, "p", [e.prompt for e in prompts], [e.prompt for e in prompts])
    xr = embed_features(encoder, "r", [e.prompt for e in train_rows], [e.response for e in train_rows])
    complied = np.array([e.set not in ("refusal", "benign_refusal") for e in train_rows], dtype=int)
    sets = np.array([e.set for e in train_rows])
    per_set = {s: len(sets) / (np.sum(sets == s) * len(set(sets.tolist()))) for s in set(sets.tolist())}
    w = np.array([per_set[s] for s in sets])
    return {"hp": fit(xp, np.array([e.label for e in prompts])), "cr": fit(xr, complied, w)}


def encoder_tag(encoder_ref: str, max_seq_length: int, dtype: str) -> str:
    """What an embedding cache is keyed on: embeddings of another encoder config never mix."""
    return f"{encoder_ref}|{max_seq_length}" + ("" if dtype == "float32" else f"|{dtype}")


class _CachedEncoder:
    """Encodes each distinct text once across calls; optionally persisted to an ``.npz`` file
    so that retraining (other features, thresholds, user labels) does not re-encode."""

    def __init__(self, inner: Encoder, path: str | Path | None = None, tag: str = "") -> None:
        self.inner = inner
        self.path = Path(path) if path else None
        self.tag = tag
        self.cache: dict[str, np.ndarray] = {}
        if self.path and self.path.is_file():
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["tag"]) == tag:
                    self.cache = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))

    def _key(self, text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.cache}
        if todo:
            for k, v in zip(todo, self.inner.encode(list(todo.values())), strict=True):
                self.cache[k] = v
        return np.stack([self.cache[k] for k in keys]) if texts else np.zeros((0, 1), np.float32)

    def save(self) -> None:
        if self.path and self.cache:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self.cache)
            with open(self.path, "wb") as f:
                np.savez(
                    f,
                    tag=np.array(self.tag),
                    keys=np.array(keys),
                    vecs=np.stack([self.cache[k] for k in keys]),
                )


def _brief(m: dict[str, Any]) -> str:
    return f"P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} AUC={m['auc']:.3f}"


def examples_to_dicts(examples: list[Example]) -> list[dict[str, Any]]:
    return [asdict(e) for e in examples]


CachedEncoder = _CachedEncoder  # public name for benchmarks and tools
