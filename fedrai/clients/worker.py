"""What a client process keeps warm between messages: the config, the model, the guarded data.

In a Ray simulation one actor serves many rounds (and several partitions), so the base model is
loaded once per process, not once per message; each message only swaps adapter tensors in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fedrai.config import ExperimentConfig
from fedrai.data import Row
from fedrai.model import load_model
from fedrai.private_files import private_dir

_CONFIGS: dict[str, ExperimentConfig] = {}
_WORKERS: dict[str, Worker] = {}


@dataclass
class Worker:
    model: Any
    tokenizer: Any
    guarded: dict[tuple[Any, ...], tuple[list[Row], dict[str, float]]] = field(default_factory=dict)


def config_from_run_config(run_config: dict[str, Any]) -> ExperimentConfig:
    """Parse (once per process) the experiment config carried by Flower's run config."""
    key = hashlib.sha256(repr(sorted(run_config.items())).encode()).hexdigest()
    if key not in _CONFIGS:
        _CONFIGS[key] = ExperimentConfig.from_run_config(dict(run_config))
    return _CONFIGS[key]


def get_worker(cfg: ExperimentConfig, *, set_threads: bool = True) -> Worker:
    """The process's model for this config; the LoRA init seed is irrelevant (weights arrive).

    ``set_threads=False`` is for a process that only preloads the model for forked children
    (``fedrai.runtime.warm_exec``): each child sets its own thread count when it calls this.
    """
    if set_threads:
        # One torch thread per CPU this client was given: clients sharing a machine that each
        # start one thread per core oversubscribe it (measured several times slower on 2 cores).
        torch.set_num_threads(cfg.federation.cpus_per_client)
    key = cfg.model.model_dump_json() + cfg.lora.model_dump_json()
    if key not in _WORKERS:
        model, tokenizer = load_model(cfg.model, cfg.lora, cfg.seed)
        _WORKERS[key] = Worker(model=model, tokenizer=tokenizer)
    return _WORKERS[key]


def client_state_dir(run_config: dict[str, Any], node_config: dict[str, Any], partition_id: int) -> Path:
    """Where a client keeps what never leaves it (audit, guarded data).

    A deployed SuperNode names it with ``--node-config "state-dir=..."``; in simulation every
    virtual client gets ``RUN_DIR/clients/client-<partition>``.
    """
    if node_config.get("state-dir"):
        path = Path(str(node_config["state-dir"]))
    else:
        # `fedrai run` names the run dir; under a plain `flwr run` it is the config's output.dir,
        # as the ServerApp resolves it (so the audit lands in RUN_DIR, not in the working dir).
        run_dir = str(run_config.get("run-dir", "") or config_from_run_config(run_config).run_dir())
        path = Path(run_dir) / "clients" / f"client-{partition_id}"
    return private_dir(path)  # original texts live here: owner only
