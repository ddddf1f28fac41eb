"""Contrast data: safe prompts with alarming words, refusals that name the harm, fine borderline answers.

Why: a filter (or a fine-tuned model) trained only on harmful prompts vs everyday instructions learns
to detect alarming *words*. These rows pair the same words with safe intent ("kill a Python process",
"shoot a portrait") and harmful topics with refusals that name the harm, so a classifier must read
the exchange.

Where every row comes from: **all rows are generated from templates written for this project** in
this package (slot filling over verbs, objects and contexts); no external dataset is read. Licence:
Apache-2.0 (the project's licence). Each row says so: ``source = "template:<family>"``,
``licence = "Apache-2.0"``.

Rows are organised in FAMILIES (one domain / template group each). Whole families are reserved for
evaluation (``EVAL_FAMILIES``): nothing from them may be trained on, by the filter or by the
federated model, so eval figures measure generalisation to unseen domains. Refusal *phrasings* are
split the same way (train and eval use disjoint pools). Train rows whose normalised prompt equals an
eval prompt are dropped.

API (pure Python, deterministic for a seed):

* ``safe_alarming_prompts(split, seed)``: safe prompts with alarming words, with a helpful answer.
* ``harmful_prompts(split, seed)``: harmful prompts on the same topics, each with a refusal that
  names the harm (``harm_naming_refusal``).
* ``borderline_compliant(split, seed)``: borderline questions where answering is fine, answered.
* ``harm_naming_refusal(prompt, rng, split)``: a refusal naming the harm of any prompt.
* ``contrast_rows(split, seed)``: all of the above.

Layout: the row and family types (``family.py``), the template tables (``safe_families.py``,
``safe_eval_families.py``, ``harmful_families.py``, ``borderline_families.py``), harm-naming refusals
(``refusals.py``) and row generation with the train / eval family split (``rows.py``).
"""

from fedrai.data.contrast.family import LICENCE, ContrastRow, Family, Kind, Split
from fedrai.data.contrast.refusals import harm_naming_refusal, harm_of, refusal_openers
from fedrai.data.contrast.rows import (
    BORDERLINE_FAMILIES,
    EVAL_FAMILIES,
    FAMILIES,
    HARMFUL_FAMILIES,
    SAFE_FAMILIES,
    borderline_compliant,
    contrast_rows,
    family_names,
    harmful_prompts,
    norm,
    safe_alarming_prompts,
)

__all__ = [
    "BORDERLINE_FAMILIES",
    "EVAL_FAMILIES",
    "FAMILIES",
    "HARMFUL_FAMILIES",
    "LICENCE",
    "SAFE_FAMILIES",
    "ContrastRow",
    "Family",
    "Kind",
    "Split",
    "borderline_compliant",
    "contrast_rows",
    "family_names",
    "harm_naming_refusal",
    "harm_of",
    "harmful_prompts",
    "norm",
    "refusal_openers",
    "safe_alarming_prompts",
]
