"""Every strategy's aggregate equals its rule (tests/strategy_rules.py) on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, Message, MessageType, MetricRecord, RecordDict

from fedrai.config import STRATEGY_NAMES, StrategyConfig
from fedrai.config.defences import ValidationConfig
from fedrai.strategies import build_strategy
from fedrai.strategies.scaffold import CONTROL_DELTA_KEY
from fedrai.transport import from_arrays, to_arrays
from tests.inprocess import InProcessGrid
from tests.strategy_rules import expected_aggregate, krum_pick

SHAPES = {"a.lora_A.weight": (2, 3), "a.lora_B.weight": (3, 2)}
WEIGHTS = [3, 1, 4, 1, 5]


def _inputs() -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(7)
    x = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    clients = [
        {k: (x[k] + rng.normal(scale=0.5, size=s)).astype(np.float32) for k, s in SHAPES.items()}
        for _ in WEIGHTS
    ]
    clients[4] = {
        k: v + 10.0 for k, v in clients[4].items()
    }  # an outlier: median, trimming and Krum differ from the mean
    return x, clients


def _reply(arrays: dict[str, np.ndarray], n: int, scaffold: bool) -> Message:
    content = RecordDict(
        {
            "arrays": to_arrays({k: torch.from_numpy(v) for k, v in arrays.items()}),
            "metrics": MetricRecord({"num-examples": n}),
        }
    )
    if scaffold:
        content[CONTROL_DELTA_KEY] = to_arrays(
            {k: torch.zeros_like(torch.from_numpy(v)) for k, v in arrays.items()}
        )
    return Message(content=content, dst_node_id=0, message_type=MessageType.TRAIN)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_strategy_aggregate_equals_its_rule(name: str) -> None:
    # Non-default server step sizes, so "returns the plain mean" and "returns x" are both wrong answers.
    cfg = StrategyConfig(
        name=name,
        server_learning_rate=0.5,
        fedopt_eta=0.5,
        krum_select=2,
        min_train_clients=5,
        min_available_clients=5,
    )
    x, clients = _inputs()
    # The rule alone: the norm check (on by default) would rightly reject the outlier first.
    strategy = build_strategy(cfg, num_clients=5, validation=ValidationConfig(norm_rule="none"))
    grid = InProcessGrid(client_app=None, num_nodes=5, run_config={})
    sent = list(
        strategy.configure_train(
            1, to_arrays({k: torch.from_numpy(v) for k, v in x.items()}), ConfigRecord(), grid
        )
    )
    assert len(sent) == 5
    replies = [_reply(c, w, name == "scaffold") for c, w in zip(clients, WEIGHTS, strict=True)]
    got, _ = strategy.aggregate_train(1, replies)
    got_np = {k: v.numpy() for k, v in from_arrays(got).items()}
    want = expected_aggregate(name, cfg, x, clients, WEIGHTS)
    for k in SHAPES:
        assert not np.allclose(got_np[k], x[k]), f"{name}: the adapter did not change"
        np.testing.assert_allclose(got_np[k], want[k], rtol=1e-5, atol=1e-5, err_msg=name)


def test_the_rules_tell_the_strategies_apart() -> None:
    """The inputs are chosen so that no two rules agree (else the test above could pass by accident)."""
    x, clients = _inputs()
    cfg = StrategyConfig(server_learning_rate=0.5, fedopt_eta=0.5, krum_select=2)
    outs = {n: expected_aggregate(n, cfg, x, clients, WEIGHTS) for n in STRATEGY_NAMES}
    assert krum_pick(clients, 0) != 4  # Krum never picks the outlier
    same = {("fedavg", "fedprox"), ("fedavgm", "scaffold")}  # same server rule by definition
    for a in STRATEGY_NAMES:
        for b in STRATEGY_NAMES:
            if a < b and (a, b) not in same and (b, a) not in same:
                assert not all(np.allclose(outs[a][k], outs[b][k], atol=1e-4) for k in SHAPES), (a, b)
