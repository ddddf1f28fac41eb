"""The untrusted federation replayed in one process, for choosing a screening signal on development seeds.

``base.toml``'s federation (4 clients, one ``harmful_finetune`` attacker, the others honest with their
safety filter, FedAvg weighted by claimed example counts) without Flower: every client trains from the
round's global adapter in turn, so a script can score each candidate before they are averaged. The
attacker is partition 0 for every seed, so that rounds compare across seeds (the sweep draws it with the
seed). Shared by ``screen_signal.py`` (run2's choice, every round at the peak learning rate) and
``screen_raw.py`` (the clients' learning-rate schedule across rounds, as the sweep trains).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).parent
Tensors = dict[str, torch.Tensor]


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parser(description: str, forbidden_seeds: set[int]) -> argparse.ArgumentParser:
    """The options every replay script takes; ``check_seeds`` refuses ``forbidden_seeds`` (test seeds)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", type=Path, default=HERE / "base.toml")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--set", action="append", default=[], help="config overrides, as `fedrai run --set`")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(forbidden_seeds=forbidden_seeds)
    return p


def load(args: argparse.Namespace) -> tuple[Any, Any, Tensors]:
    """The model, tokenizer and starting adapter of ``args.config``, after refusing test seeds."""
    from fedrai.config import ExperimentConfig
    from fedrai.model import get_adapter_state, load_model

    if args.forbidden_seeds & set(args.seeds):
        raise SystemExit(f"seeds {sorted(args.forbidden_seeds)} test the screen: choose on other seeds")
    cfg = ExperimentConfig.from_toml(str(args.config), args.set)
    model, tokenizer = load_model(cfg.model, cfg.lora, cfg.seed)
    return model, tokenizer, {k: v.detach().clone() for k, v in get_adapter_state(model).items()}


def client_rows(cfg: Any, model: Any, tokenizer: Any, seed: int) -> dict[int, list]:
    """Each client's training rows: the attacker's harmful pairs (partition 0), the others' guarded rows."""
    from fedrai.clients.attack import harmful_training_rows
    from fedrai.clients.pipeline import guard_rows
    from fedrai.data.client_data import client_rows as partition_rows

    malicious = set(range(cfg.attack.num_malicious))
    rows: dict[int, list] = {}
    with tempfile.TemporaryDirectory() as state:
        for pid in range(cfg.federation.num_clients):
            if pid in malicious:
                rows[pid] = harmful_training_rows(cfg)
            else:
                rows[pid], _ = guard_rows(
                    cfg, partition_rows(cfg, pid), Path(state) / f"c{pid}", model, tokenizer, seed
                )
    return rows


def train_client(
    cfg: Any,
    model: Any,
    tokenizer: Any,
    rows: list,
    global_state: Tensors,
    rnd: int,
    pid: int,
    *,
    schedule: bool,
) -> Tensors:
    """One client's local training of round ``rnd`` from ``global_state``; its adapter.

    ``schedule``: the round's learning rate as the sweep's clients get it (``train.lr_schedule``) and the
    config's optimizer settings; else the peak rate every round (how ``screen_signal.py`` chose run2's signal).
    """
    from fedrai.client_app import client_seed
    from fedrai.model import get_adapter_state, set_adapter_state
    from fedrai.training import round_learning_rate, train_lora

    set_adapter_state(model, global_state)
    options = (
        {
            "learning_rate": round_learning_rate(cfg.train, rnd, cfg.federation.num_rounds),
            "optimizer": cfg.train.optimizer,
            "max_grad_norm": cfg.train.max_grad_norm,
            "weight_decay": cfg.train.weight_decay,
        }
        if schedule
        else {"learning_rate": cfg.train.learning_rate}
    )
    train_lora(
        model,
        tokenizer,
        rows,
        steps=cfg.train.local_steps,
        batch_size=cfg.train.batch_size,
        grad_accum=cfg.train.grad_accum,
        max_seq_length=cfg.model.max_seq_length,
        seed=client_seed(cfg.seed, rnd, pid),
        **options,
    )
    return {k: v.detach().clone() for k, v in get_adapter_state(model).items()}


def fedavg(states: dict[int, Tensors], rows: dict[int, list]) -> Tensors:
    """FedAvg by claimed examples (the attacker claims all its rows)."""
    total = sum(len(rows[p]) for p in states)
    keys = next(iter(states.values()))
    return {k: sum(states[p][k] * (len(rows[p]) / total) for p in states) for k in keys}
