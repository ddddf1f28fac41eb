"""Simulated malicious clients, to test the server's defences (``[attack]``; off by default).

The attack lives in the ClientApp only, so deployment code is untouched, and it applies only to
simulated clients (a node with a ``partition-id`` and no ``data-path``): a deployed site is never
made malicious by a config. Kinds:

- ``harmful_finetune``: skips its safety filter and trains on harmful prompt+answer pairs only
  (the screening probe prompts are left out, so screening is not scored on the attacker's rows);
- ``scaled``: sends ``x + scale (y - x)``; ``sign_flip``: sends ``x - scale (y - x)``;
- ``nonfinite``: sends NaN and Inf values.
"""

from __future__ import annotations

import random

import torch

from fedrai.config import ExperimentConfig
from fedrai.data import Row, prompt_of

Tensors = dict[str, torch.Tensor]


def malicious_partitions(cfg: ExperimentConfig) -> list[int]:
    """The malicious partition ids: ``attack.partitions``, else ``num_malicious`` drawn with the seed."""
    a = cfg.attack
    if a.num_malicious == 0:
        return []
    if a.partitions:
        return sorted(a.partitions)
    rng = random.Random(f"{cfg.seed}:attack")
    return sorted(rng.sample(range(cfg.federation.num_clients), a.num_malicious))


def is_malicious(cfg: ExperimentConfig, node_config: dict, partition_id: int) -> bool:
    simulated = "partition-id" in node_config and not node_config.get("data-path")
    return simulated and partition_id in malicious_partitions(cfg)


def harmful_training_rows(cfg: ExperimentConfig) -> list[Row]:
    """Harmful pairs of ``data.harmful_source``, minus the screening probes' prompts."""
    from fedrai.data.loading import load_rows
    from fedrai.safety.redteam import normalise
    from fedrai.screening.probes import redteam_probes

    loaded = load_rows(cfg.data.harmful_source, cfg.data.model_copy(update={"max_rows": 0}), origin="harmful")
    probes = {normalise(p.prompt) for p in redteam_probes(cfg)}
    rows = [r for r in loaded.rows if r["origin"] == "harmful" and normalise(prompt_of(r)) not in probes]
    if not rows:
        raise ValueError(
            f"attack: data.harmful_source = {cfg.data.harmful_source!r} has no harmful rows to train on"
        )
    return rows


def poison_update(cfg: ExperimentConfig, global_state: Tensors, local_state: Tensors) -> Tensors:
    """The adapter a ``scaled`` / ``sign_flip`` / ``nonfinite`` attacker sends instead of ``local_state``."""
    kind, scale = cfg.attack.kind, cfg.attack.scale
    if kind == "scaled":
        return {k: global_state[k] + scale * (v - global_state[k]) for k, v in local_state.items()}
    if kind == "sign_flip":
        return {k: global_state[k] - scale * (v - global_state[k]) for k, v in local_state.items()}
    if kind == "nonfinite":
        out = {k: v.clone() for k, v in local_state.items()}
        first = next(iter(out))
        flat = out[first].view(-1)
        flat[0] = float("nan")
        flat[-1] = float("inf")
        return out
    return dict(local_state)
