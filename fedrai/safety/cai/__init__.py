"""Constitutional AI: critique-and-revise on clients, on the server, or both (Bai et al. 2022).

- :mod:`.constitution`: the principles and refusals file, loaded and validated.
- :mod:`.llm`: who critiques (the model itself, another local model, an OpenAI-compatible server).
- :mod:`.engine`: the critique -> revise -> re-check loop with fallbacks and counts.
- :mod:`.client` / :mod:`.server`: the two placements; :mod:`.dpo`: preference training.

Heavy imports (torch, trl) happen inside functions, so importing this package is cheap.
"""

from fedrai.safety.cai.client import measure_scope_cost, revise_on_client
from fedrai.safety.cai.constitution import (
    DEFAULT_CONSTITUTION,
    Constitution,
    ConstitutionError,
    Principle,
    Refusal,
    load_constitution,
)
from fedrai.safety.cai.dpo import dpo_pairs, train_dpo
from fedrai.safety.cai.engine import CAICounts, CAIEngine, CAIOutcome, CAIResult, check_revision
from fedrai.safety.cai.llm import Critic, CriticError, HttpModel, LocalModel, SelfModel, build_critic
from fedrai.safety.cai.server import ServerCAI, load_red_team_prompts

__all__ = [
    "DEFAULT_CONSTITUTION",
    "CAICounts",
    "CAIEngine",
    "CAIOutcome",
    "CAIResult",
    "Constitution",
    "ConstitutionError",
    "Critic",
    "CriticError",
    "HttpModel",
    "LocalModel",
    "Principle",
    "Refusal",
    "SelfModel",
    "ServerCAI",
    "build_critic",
    "check_revision",
    "dpo_pairs",
    "load_constitution",
    "load_red_team_prompts",
    "measure_scope_cost",
    "revise_on_client",
    "train_dpo",
]
