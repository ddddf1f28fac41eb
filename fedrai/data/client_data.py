"""Every client's training rows, built the same way in every process from the config alone.

Simulated clients run in separate Ray workers and each rebuilds the split itself, so the whole
build is a pure function of ``seed`` + the ``data`` / ``partition`` sections + ``num_clients``
(cached once per process). A real deployment site reads its own file with :func:`site_rows`.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fedrai.config import DataConfig, ExperimentConfig, PartitionConfig
from fedrai.data import Row
from fedrai.data.loading import HARMFUL, load_rows
from fedrai.data.partition import mix_harmful, partition_rows, split_heldout


@dataclass
class ClientData:
    """The federation's rows: one list per client, the held-out benign rows, and what loading dropped."""

    partitions: list[list[Row]]
    heldout: list[Row]
    load_report: dict[str, Any] = field(default_factory=dict)


def build_client_datasets(cfg: ExperimentConfig) -> ClientData:
    """Load, hold out, partition and mix harmful pairs, deterministically from ``cfg.seed``."""
    return _build(cfg.seed, cfg.data, cfg.partition, cfg.federation.num_clients)


def client_rows(cfg: ExperimentConfig, partition_id: int) -> list[Row]:
    """One client's rows (a private copy: the guards may rewrite rows in place)."""
    num_clients = cfg.federation.num_clients
    if not 0 <= partition_id < num_clients:
        raise ValueError(
            f"partition id {partition_id} is outside 0..{num_clients - 1} (federation.num_clients)"
        )
    return copy.deepcopy(_cached(_key(cfg)).partitions[partition_id])


def heldout_rows(cfg: ExperimentConfig) -> list[Row]:
    """The held-out benign rows (same cache as :func:`client_rows`), for server-side loss."""
    return copy.deepcopy(_cached(_key(cfg)).heldout)


def site_rows(path: str, cfg: ExperimentConfig) -> list[Row]:
    """A deployment site's own file, read with the same rules; no split and no held-out rows.

    Harmful pairs are mixed in only when ``data.harmful_fraction`` > 0 (reproducing the paper on
    real nodes); a real site leaves it at 0 and trains on exactly its own rows.
    """
    rows = load_rows(path, cfg.data, seed=cfg.seed).rows
    if cfg.data.harmful_fraction > 0:
        pool = _harmful_pool(cfg.data, cfg.seed)[0]
        rows = mix_harmful(rows, pool, cfg.data.harmful_fraction, seed=_client_seed(cfg.seed, path))
    return rows


def _key(cfg: ExperimentConfig) -> str:
    """Everything the split depends on, and nothing else (rounds, model, ... do not change it)."""
    spec = {
        "seed": cfg.seed,
        "data": cfg.data.model_dump(mode="json"),
        "partition": cfg.partition.model_dump(mode="json"),
        "num_clients": cfg.federation.num_clients,
    }
    return json.dumps(spec, sort_keys=True)


@lru_cache(maxsize=4)
def _cached(key: str) -> ClientData:
    spec = json.loads(key)
    return _build(
        spec["seed"],
        DataConfig.model_validate(spec["data"]),
        PartitionConfig.model_validate(spec["partition"]),
        spec["num_clients"],
    )


def _build(seed: int, data: DataConfig, partition: PartitionConfig, num_clients: int) -> ClientData:
    loaded = load_rows(data.source, data, seed=seed)
    rows = loaded.rows
    # Hold out benign rows only: the server-side loss measures helpfulness, not harmful compliance.
    benign = [r for r in rows if r["origin"] == "benign"]
    _, heldout = split_heldout(benign, data.heldout_rows, seed)
    held_ids = {r["id"] for r in heldout}
    train = [r for r in rows if r["id"] not in held_ids]
    partitions = partition_rows(train, num_clients, partition, seed)
    report: dict[str, Any] = {
        "source": loaded.source,
        "rows": len(rows),
        "skipped": loaded.skipped,
        "skipped_reasons": loaded.skipped_reasons,
        "heldout": len(heldout),
        "partition_method": partition.method,
        "partition_sizes": [len(p) for p in partitions],
    }
    if data.contrast_fraction > 0:
        contrast = contrast_train_rows(seed)
        partitions = [
            mix_harmful(part, contrast, data.contrast_fraction, seed=_client_seed(seed, f"contrast:{i}"))
            for i, part in enumerate(partitions)
        ]
        report["contrast_per_client"] = [sum(r["group"] == "contrast" for r in p) for p in partitions]
    if data.harmful_fraction > 0:
        pool, pool_report = _harmful_pool(data, seed)
        partitions = [
            mix_harmful(part, pool, data.harmful_fraction, seed=_client_seed(seed, i))
            for i, part in enumerate(partitions)
        ]
        report["harmful"] = pool_report
        report["harmful_per_client"] = [sum(r["origin"] == HARMFUL for r in p) for p in partitions]
        report["client_sizes"] = [len(p) for p in partitions]
    return ClientData(partitions=partitions, heldout=heldout, load_report=report)


def _harmful_pool(data: DataConfig, seed: int) -> tuple[list[Row], dict[str, Any]]:
    """Only rows whose origin is harmful: refused or safe answers are not harmful training data."""
    loaded = load_rows(
        data.harmful_source, data.model_copy(update={"max_rows": 0}), origin=HARMFUL, seed=seed
    )
    pool = [r for r in loaded.rows if r["origin"] == HARMFUL]
    if not pool:
        raise ValueError(f"data.harmful_source = {data.harmful_source!r} has no rows with origin 'harmful'")
    report = {
        "source": loaded.source,
        "rows": len(loaded.rows),
        "pool": len(pool),
        "skipped": loaded.skipped,
        "skipped_reasons": loaded.skipped_reasons,
    }
    return pool, report


def contrast_train_rows(seed: int) -> list[Row]:
    """Contrast TRAIN rows as benign training rows: safe prompts with alarming words and borderline
    questions, each answered helpfully (the EVAL families stay out: they measure over-refusal)."""
    from fedrai.data.contrast import borderline_compliant, safe_alarming_prompts

    source = safe_alarming_prompts("train", seed) + borderline_compliant("train", seed)
    return [
        Row(
            id=f"contrast:{r['family']}:{i}",
            messages=[{"role": "user", "content": r["prompt"]}],
            response=r["response"],
            origin="benign",
            group="contrast",
        )
        for i, r in enumerate(source)
    ]


def _client_seed(seed: int, client: int | str) -> int:
    """A per-client seed, so clients draw different harmful rows yet every process draws the same."""
    return random.Random(f"{seed}:{client}").getrandbits(63)


def server_benign_rows(cfg: ExperimentConfig, source: str, limit: int = 2000) -> list[Row]:
    """Benign (prompt, response) rows the server may train on, e.g. to anchor server-side CAI.

    Drawn from a public source; when that is the clients' own source (a simulation), every row
    a client holds and every held-out row is excluded, so the server never trains on client data
    and the held-out loss stays held out.
    """
    loaded = load_rows(source, cfg.data.model_copy(update={"max_rows": 0}), seed=cfg.seed)
    taken: set[str] = set()
    if source == cfg.data.source:
        data = _cached(_key(cfg))
        taken = {r["id"] for part in data.partitions for r in part} | {r["id"] for r in data.heldout}
    rows = [r for r in loaded.rows if r["origin"] == "benign" and r["id"] not in taken]
    random.Random(f"{cfg.seed}:server-benign").shuffle(rows)
    return rows[:limit]
