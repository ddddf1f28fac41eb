"""The red-team pool: every offline harmful-prompt source except AdvBench, which stays test-only.

Server CAI learns refusals from these prompts and AdvBench measures them, so a prompt that is
AdvBench in other words would leak the test into training. The pool therefore drops, in order:
duplicates inside the pool (normalised text), prompts whose normalised text is an AdvBench goal,
and near-duplicates of an AdvBench goal (cosine similarity of all-MiniLM-L6-v2 embeddings at or above
``threshold``). The counts removed at each step travel with the pool (:class:`PoolReport`).

The pool is cached per (sources, threshold) under the fedrai cache, because embedding ~1,400
texts costs ~20 s on one core and every run of a sweep would pay it again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from fedrai.assets import cache_dir
from fedrai.data.sources import iter_records

DEFAULT_SOURCES = ("embedded:harmbench", "embedded:strongreject", "embedded:harmful-pairs")
DEFAULT_THRESHOLD = (
    0.75  # paraphrases of an AdvBench goal sit above it (redteam_pool.json lists the histogram)
)
_EMBEDDER = "embedded:minilm-l6-v2"


class RedTeamPoolError(ValueError):
    """A red-team source that cannot be read; the message names it."""


@dataclass
class PoolReport:
    """What each step of :func:`build_pool` kept and removed (the issue asks for the counts)."""

    sources: dict[str, int] = field(default_factory=dict)  # prompts read per source
    read: int = 0
    removed_internal_duplicates: int = 0
    removed_advbench_exact: int = 0
    removed_advbench_near: int = 0
    threshold: float = DEFAULT_THRESHOLD
    kept: int = 0
    near_examples: list[dict[str, object]] = field(default_factory=list)  # a few removed, for the record


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: 'Write a tutorial...' == 'write a tutorial'."""
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def read_source(source: str) -> list[str]:
    """Harmful prompts of one offline source (``embedded:harmbench`` / ``strongreject`` /
    ``harmful-pairs`` (rows labelled Harmful only) / ``advbench``), or any file server CAI reads."""
    if source == "embedded:harmful-pairs":
        records = iter_records(source)
        return [
            r.value["user"]
            for r in records
            if isinstance(r.value, dict)
            and str(r.value.get("category", "")).strip('"').lower().startswith("harmful")
        ]
    if source == "embedded:advbench":
        from fedrai.evaluation.advbench import load_advbench_goals

        return load_advbench_goals(source)
    from fedrai.safety.cai.server import load_red_team_prompts

    try:
        return load_red_team_prompts(source)
    except ValueError as err:
        raise RedTeamPoolError(f"red-team source {source!r}: {err}") from None


def build_pool(
    sources: Sequence[str] = DEFAULT_SOURCES,
    *,
    exclude: str = "embedded:advbench",
    threshold: float = DEFAULT_THRESHOLD,
    encode: Callable[[list[str]], np.ndarray] | None = None,
) -> tuple[list[str], PoolReport]:
    """The de-duplicated pool and its report; ``encode`` maps texts to unit vectors (MiniLM by default)."""
    report = PoolReport(threshold=threshold)
    seen: set[str] = set()
    pool: list[str] = []
    for source in sources:
        prompts = [p.strip() for p in read_source(source) if p and p.strip()]
        report.sources[source] = len(prompts)
        report.read += len(prompts)
        for p in prompts:
            key = normalise(p)
            if key in seen:
                report.removed_internal_duplicates += 1
                continue
            seen.add(key)
            pool.append(p)
    test = read_source(exclude)
    test_keys = {normalise(t) for t in test}
    exact = [p for p in pool if normalise(p) in test_keys]
    report.removed_advbench_exact = len(exact)
    pool = [p for p in pool if normalise(p) not in test_keys]
    if encode is None:
        encode = _minilm()
    sims = encode(pool) @ encode(test).T
    nearest = sims.argmax(axis=1)
    best = sims[np.arange(len(pool)), nearest]
    keep = best < threshold
    removed = [i for i in range(len(pool)) if not keep[i]]
    report.removed_advbench_near = len(removed)
    report.near_examples = [
        {"pool": pool[i], "advbench": test[int(nearest[i])], "cosine": round(float(best[i]), 3)}
        for i in removed[:5]
    ]
    pool = [p for p, k in zip(pool, keep, strict=True) if k]
    report.kept = len(pool)
    return pool, report


def nearest_similarities(
    sources: Sequence[str] = DEFAULT_SOURCES, exclude: str = "embedded:advbench"
) -> np.ndarray:
    """Each (exact-deduplicated) pool prompt's highest cosine to any AdvBench goal: to choose the threshold."""
    pool = list(dict.fromkeys(p.strip() for s in sources for p in read_source(s) if p.strip()))
    encode = _minilm()
    return (encode(pool) @ encode(read_source(exclude)).T).max(axis=1)


def load_pool(
    sources: Sequence[str] = DEFAULT_SOURCES,
    threshold: float = DEFAULT_THRESHOLD,
    exclude: str = "embedded:advbench",
) -> tuple[list[str], PoolReport]:
    """:func:`build_pool`, cached on disk per (sources, exclude, threshold)."""
    key = hashlib.sha256(json.dumps([list(sources), exclude, threshold]).encode()).hexdigest()[:16]
    path = cache_dir() / "redteam-pool" / f"{key}.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["prompts"], PoolReport(**data["report"])
    pool, report = build_pool(sources, exclude=exclude, threshold=threshold)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"prompts": pool, "report": asdict(report)}), encoding="utf-8")
    tmp.replace(path)
    return pool, report


def _minilm() -> Callable[[list[str]], np.ndarray]:
    from fedrai.safety.filters.embedded import SentenceEncoder

    encoder = SentenceEncoder(_EMBEDDER, max_seq_length=128, threads=1)
    return encoder.encode
