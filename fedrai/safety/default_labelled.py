"""The default labelled set for the embedded filter's head, built from the offline assets.

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

import random
import re
from pathlib import Path
from typing import Any

from fedrai.assets import resolve
from fedrai.data.sources import PROMPT_SUFFIXES, iter_records
from fedrai.safety.labelled import Example, norm_text, split_of
from fedrai.safety.refusal_templates import synth_refusal, synth_refusal_v2


def _harmful_label(text: str) -> int | None:
    t = text.strip().lstrip("'\"*").lower()
    t = t.removeprefix("answer:").strip().lstrip("'\"*")
    if t.startswith("not harmful"):
        return 0
    if t.startswith("harmful"):
        return 1
    return None


def _rows(source: str) -> list[dict[str, str]]:
    """Every record of an asset file (pyrit CSVs: ``#`` lines dropped), in order."""
    return [r.value for r in iter_records(source, suffixes=PROMPT_SUFFIXES, csv_comments=True)]


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
    rng = random.Random(seed)
    out: list[Example] = []

    pairs = _rows("embedded:harmful-pairs")
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
    hb = _rows("embedded:harmbench")
    harmful_prompts += [(p.strip(), f"harmbench:{i}") for i, p in enumerate(hb) if p.strip()]
    sr = _rows("embedded:strongreject")
    harmful_prompts += [(r["forbidden_prompt"].strip(), f"strongreject:{i}") for i, r in enumerate(sr)]

    seen: set[str] = set()
    for prompt, src in harmful_prompts:
        key = norm_text(prompt)
        if key in seen:
            continue
        seen.add(key)
        out.append(Example(prompt, None, 1, "harmful_prompt", source=src))
        out.append(Example(prompt, "", 0, "refusal", source=src))  # response filled after the split

    for i, r in enumerate(_rows("embedded:refusal-evals")):
        if r.get("human_score", "").strip() == "1" and r.get("assistant_response", "").strip():
            out.append(
                Example(r["objective"], r["assistant_response"], 0, "refusal", source=f"refusal-evals:{i}")
            )

    lines = _rows("embedded:instructlab")
    picked = rng.sample(range(len(lines)), min(n_benign + n_benign // 10, len(lines)))
    for k, li in enumerate(picked):
        msgs = lines[li].get("messages", [])
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
        ex.split = split_of(ex.prompt, seed)
    # AdvBench: test only, never trained on; drop any prompt that also occurs above.
    for i, s in enumerate(_rows("embedded:advbench")):
        prompt = str(s.get("value", "")).strip()
        if not prompt or norm_text(prompt) in seen:
            continue
        out.append(Example(prompt, None, 1, "harmful_prompt", "test", f"advbench:{i}"))
        out.append(Example(prompt, "", 0, "refusal", "test", f"advbench:{i}"))
    # pyrit's human-labelled refusals answer some AdvBench prompts too: those rows go to test
    # (they draw no random numbers, so every other row is unchanged)
    adv_prompts = {norm_text(e.prompt) for e in out if e.source.startswith("advbench")}
    for ex in out:
        if not ex.source.startswith("advbench") and norm_text(ex.prompt) in adv_prompts:
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
    rng = random.Random(seed + 104729)
    test_only = {
        norm_text(str(x.get("value", ""))) for x in _rows("embedded:advbench")
    }  # AdvBench stays test-only
    known = {norm_text(e.prompt) for e in existing if e.set == "harmful_prompt"}
    pairs_seen = {(norm_text(e.prompt), norm_text(e.response or "")) for e in existing}
    rows: list[tuple[str, str, int, str]] = []
    if categories:
        root = Path(resolve("embedded:objective-evals"))
        for cat in categories:
            for i, r in enumerate(_rows(str(root / f"{cat}.csv"))):
                score = str(r.get("human_score", "")).strip()
                if score in ("0", "1"):
                    rows.append(
                        (r["objective"], r["assistant_response"], int(score), f"objective-evals:{cat}:{i}")
                    )
    if harm_evals:
        root = Path(resolve("embedded:harm-evals"))
        for path in sorted(root.glob("*.csv")):
            for i, r in enumerate(_rows(str(path))):
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
        key = (norm_text(prompt), norm_text(answer))
        if not prompt.strip() or not answer.strip() or key[0] in test_only or key in pairs_seen:
            continue
        pairs_seen.add(key)
        split = split_of(prompt, seed)
        out.append(
            Example(
                prompt, answer, label, "harmful_compliant" if label else "harmful_safe_answer", split, src
            )
        )
        if key[0] not in known:
            new_prompts.setdefault(key[0], (prompt, src))
    for prompt, src in new_prompts.values():
        split = split_of(prompt, seed)
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
