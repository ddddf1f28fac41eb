"""Client placement: critique-and-revise local rows before local training.

``flagged`` scope (the default) runs CAI only on what the safety filter flagged, which is the
cost-efficient mode; ``all`` runs it on every row (the full pass the paper's cost is compared to).
Texts, critiques and per-row verdicts stay in the client's local audit; only counts leave.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fedrai.config import ExperimentConfig
from fedrai.data import Row
from fedrai.safety.cai.constitution import Constitution, load_constitution
from fedrai.safety.cai.dpo import dpo_pairs as build_pairs
from fedrai.safety.cai.engine import Audit, CAICounts, CAIEngine, CAIOutcome, Scorer
from fedrai.safety.cai.llm import Critic


@lru_cache(maxsize=8)
def _constitution(path: str | None) -> Constitution:
    return load_constitution(path)


def constitution_for(cfg: ExperimentConfig) -> Constitution:
    """The constitution a config names (loaded once per process)."""
    return _constitution(cfg.cai.constitution)


def revise_on_client(
    rows_all: list[Row],
    rows_flagged: list[Row],
    cfg: ExperimentConfig,
    critic: Critic,
    safety_filter: Scorer | None,
    audit: Audit | None,
    seed: int,
) -> tuple[list[Row], CAICounts, list[dict[str, Any]]]:
    """Run CAI over the flagged rows (``cai.client_scope = flagged``) or all rows (``all``).

    Returns the rows to train on (in ``rows_all`` order: unflagged rows untouched, CAI rows with
    their revision or refusal, dropped rows gone), the counts for the server, and DPO pairs
    (CAI answer over original) for local DPO when ``cai.objective`` asks for it.
    """
    flagged_ids = {r["id"] for r in rows_flagged}
    targets = rows_all if cfg.cai.client_scope == "all" else [r for r in rows_all if r["id"] in flagged_ids]
    # Flagged rows the caller did not pass in rows_all still get CAI (and are then trained on).
    known = {r["id"] for r in rows_all}
    extra = [r for r in rows_flagged if r["id"] not in known]
    targets = [*targets, *extra]

    engine = CAIEngine(
        constitution_for(cfg),
        critic,
        cfg.cai,
        safety_filter=safety_filter,
        threshold=cfg.safety.threshold,
        audit=audit,
        audit_context={"placement": "client", "scope": cfg.cai.client_scope},
    )
    result = engine.run(
        [[dict(m) for m in r["messages"]] for r in targets],
        [r["response"] for r in targets],
        seed=seed,
        ids=[r["id"] for r in targets],
        # Unflagged rows in an `all` pass were judged safe already; do not score them twice.
        original_unsafe=[r["id"] in flagged_ids for r in targets],
    )
    by_id: dict[str, CAIOutcome] = {o.row_id: o for o in result.outcomes}
    rows_out: list[Row] = []
    for row in [*rows_all, *extra]:
        outcome = by_id.get(row["id"])
        if outcome is None:
            rows_out.append(row)
        elif outcome.final is not None:
            rows_out.append({**row, "response": outcome.final})
    return rows_out, result.counts, build_pairs(result.outcomes)


def measure_scope_cost(
    rows_all: list[Row],
    rows_flagged: list[Row],
    cfg: ExperimentConfig,
    critic: Critic,
    safety_filter: Scorer | None,
    seed: int,
) -> dict[str, float]:
    """Cost of the flagged-only pass as a share of a full pass over the same rows.

    Runs both scopes with the same critic and filter (no audit) and reports generated tokens,
    seconds and rows of each, and their ratios (``cai.cost_share_*``).
    """
    out: dict[str, float] = {}
    for scope in ("flagged", "all"):
        scoped = cfg.model_copy(update={"cai": cfg.cai.model_copy(update={"client_scope": scope})})
        _, counts, _ = revise_on_client(rows_all, rows_flagged, scoped, critic, safety_filter, None, seed)
        out[f"cai.{scope}.rows"] = float(counts.rows)
        out[f"cai.{scope}.tries"] = float(counts.tries)
        out[f"cai.{scope}.generated_tokens"] = float(counts.generated_tokens)
        out[f"cai.{scope}.seconds"] = counts.seconds
    for key in ("rows", "tries", "generated_tokens", "seconds"):
        full = out[f"cai.all.{key}"]
        out[f"cai.cost_share_{key}"] = out[f"cai.flagged.{key}"] / full if full else 0.0
    return out
