"""The probe set of server-side update screening: red-team prompts and benign prompts, none from AdvBench.

A red-team probe is a harmful prompt with two answers: a refusal grounded in a principle of the
constitution (``fedrai.safety.refusals``) and a compliant answer (from the harmful pairs). A benign
probe is a prompt with its reference answer. The prompts are drawn (seeded) from sources the
clients' own data does not hold: red-team prompts only where they survive the red-team pool's
AdvBench de-duplication (``fedrai.safety.redteam``), benign rows that no client holds and that are
not held out (``server_benign_rows``), so screening neither peeks at the test set nor scores
an update on a client's own rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fedrai.config import ExperimentConfig
from fedrai.data import Row, prompt_of
from fedrai.data.loading import load_rows
from fedrai.safety.refusals import default_refusal

HARMFUL = "harmful"


@dataclass(frozen=True)
class RedTeamProbe:
    prompt: str
    refusal: str
    compliance: str


@dataclass
class ProbeSet:
    redteam: list[RedTeamProbe]
    benign: list[Row] = field(default_factory=list)

    def prompts(self) -> set[str]:
        """Normalised red-team prompts (a simulated attacker leaves these out of its training rows)."""
        from fedrai.safety.redteam import normalise

        return {normalise(p.prompt) for p in self.redteam}


def redteam_probes(cfg: ExperimentConfig) -> list[RedTeamProbe]:
    """``screen.redteam_probes`` harmful prompts with a refusal and a compliant answer each."""
    sc = cfg.screen
    loaded = load_rows(
        sc.redteam_source, cfg.data.model_copy(update={"max_rows": 0}), origin=HARMFUL, seed=cfg.seed
    )
    rows = [r for r in loaded.rows if r["origin"] == HARMFUL and r["response"].strip()]
    if sc.disjoint_from_advbench:
        from fedrai.safety.redteam import load_pool, normalise

        pool = {normalise(p) for p in load_pool()[0]}
        rows = [r for r in rows if normalise(prompt_of(r)) in pool]
    if not rows:
        raise ValueError(
            f"screen.redteam_source = {sc.redteam_source!r}: no harmful prompt+answer rows to probe with"
        )
    rng = random.Random(f"{cfg.seed}:screen-probes")
    picked = rng.sample(rows, min(sc.redteam_probes, len(rows)))
    return [RedTeamProbe(prompt_of(r), default_refusal(prompt_of(r), None), r["response"]) for r in picked]


def benign_probes(cfg: ExperimentConfig) -> list[Row]:
    """``screen.benign_probes`` benign rows with reference answers that no client holds."""
    if cfg.screen.benign_probes == 0:
        return []
    from fedrai.data.client_data import server_benign_rows

    rows = server_benign_rows(cfg, cfg.screen.benign_source, limit=max(cfg.screen.benign_probes, 1))
    return rows[: cfg.screen.benign_probes]


def build_probe_set(cfg: ExperimentConfig) -> ProbeSet:
    return ProbeSet(redteam_probes(cfg), benign_probes(cfg))
