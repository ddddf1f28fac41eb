"""SCAFFOLD: the server strategy against FedAvg, the method on a toy problem, and real rounds."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp.exception import InconsistentMessageReplies
from flwr.serverapp.strategy import FedAvg
from safetensors.torch import load_file

from fedrai.client_app import app as client_app
from fedrai.rounds import run_rounds
from fedrai.run_dir import RunDir
from fedrai.strategies.scaffold import (
    CONTROL_DELTA_KEY,
    CONTROL_KEY,
    ClientControlStore,
    Scaffold,
    ScaffoldClient,
)
from fedrai.transport import from_arrays, to_arrays
from tests.inprocess import InProcessGrid, SimulatedCrash
from tests.test_rounds import make_config, run


def nodes(n: int) -> InProcessGrid:
    """A grid of ``n`` connected nodes (it also sets the ServerApp identity Flower's Messages need)."""
    return InProcessGrid(client_app=None, num_nodes=n, run_config={})


def reply(
    arrays: dict[str, torch.Tensor],
    num_examples: int,
    delta: dict[str, torch.Tensor] | None,
    loss: float | None = None,
) -> Message:
    metrics = {"num-examples": num_examples, **({} if loss is None else {"train.loss": loss})}
    content = RecordDict({"arrays": to_arrays(arrays), "metrics": MetricRecord(metrics)})
    if delta is not None:
        content[CONTROL_DELTA_KEY] = to_arrays(delta)
    return Message(content=content, dst_node_id=0, message_type=MessageType.TRAIN)


def state(values: dict[str, np.ndarray]) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((k, torch.as_tensor(v, dtype=torch.float32)) for k, v in values.items())


# ---------------------------------------------------------------------------------- server


def test_first_round_aggregate_equals_fedavg_and_c_moves_by_sum_over_n():
    rng = np.random.default_rng(0)
    shapes = {"a.lora_A.weight": (4, 8), "a.lora_B.weight": (8, 4)}
    x = state({k: rng.normal(size=s) for k, s in shapes.items()})
    strategy = Scaffold(
        fraction_train=0.5, min_train_nodes=2, min_available_nodes=3, server_learning_rate=1.0
    )
    messages = list(strategy.configure_train(1, to_arrays(x), ConfigRecord({"lr": 0.1}), nodes(3)))

    assert len(messages) == 2 and strategy.total_nodes == 3
    sent = messages[0].content
    assert sent["config"]["strategy"] == "scaffold"
    assert all(not v.any() for v in from_arrays(sent[CONTROL_KEY]).values())  # c starts at zero
    assert list(sent[CONTROL_KEY].keys()) == list(x)

    ys = [state({k: rng.normal(size=s) for k, s in shapes.items()}) for _ in range(2)]
    dcs = [state({k: rng.normal(size=s) for k, s in shapes.items()}) for _ in range(2)]
    replies = [reply(y, n, dc, loss) for y, n, dc, loss in zip(ys, (3, 7), dcs, (2.0, 1.0), strict=True)]

    # Flower's FedAvg refuses replies with two ArrayRecords; SCAFFOLD handles them itself.
    with pytest.raises(InconsistentMessageReplies):
        FedAvg().aggregate_train(1, replies)
    got, metrics = strategy.aggregate_train(1, replies)
    want, _ = FedAvg().aggregate_train(1, [reply(y, n, None) for y, n in zip(ys, (3, 7), strict=True)])
    for k in x:
        np.testing.assert_allclose(got[k].numpy(), want[k].numpy(), rtol=1e-6, atol=1e-7)
        # c <- c + (|S|/N) * mean(dc_i) with |S| = 2 replies, N = 3 nodes
        np.testing.assert_allclose(strategy.server_control[k], (dcs[0][k] + dcs[1][k]).numpy() / 3, rtol=1e-6)
    # client metrics are averaged by examples: (3 * 2.0 + 7 * 1.0) / 10
    assert dict(metrics) == {"train.loss": pytest.approx(1.3)}


def test_server_learning_rate_scales_the_step_and_bad_replies_are_rejected():
    x = state({"w": np.zeros(3)})
    strategy = Scaffold(min_train_nodes=1, min_available_nodes=1, server_learning_rate=0.5)
    strategy.configure_train(1, to_arrays(x), ConfigRecord(), nodes(1))
    y, dc = state({"w": np.array([2.0, -2.0, 4.0])}), state({"w": np.ones(3)})
    got, _ = strategy.aggregate_train(1, [reply(y, 1, dc)])
    np.testing.assert_allclose(got["w"].numpy(), [1.0, -1.0, 2.0])
    with pytest.raises(InconsistentMessageReplies, match="scaffold.dc"):
        strategy.aggregate_train(1, [reply(y, 1, None)])


# ---------------------------------------------------------------------------------- the method

# Two clients with quadratics of different curvature: f_i(w) = 0.5 (w - a_i)^T H_i (w - a_i).
# The global optimum of f_1 + f_2 is (H_1 + H_2)^-1 (H_1 a_1 + H_2 a_2) = (10/11, 10/11); FedAvg with
# many local steps drifts towards each client's own optimum and settles near mean(a_i) instead.
CURVATURE = [torch.tensor([1.0, 0.1]), torch.tensor([0.1, 1.0])]
OPTIMA = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])]
OPTIMUM = sum(h * a for h, a in zip(CURVATURE, OPTIMA, strict=True)) / sum(CURVATURE)


def run_toy(tmp_path, use_scaffold: bool, rounds: int = 40, steps: int = 20, lr: float = 0.1):
    """Federated rounds on the toy problem through the real strategy and client control code."""
    strategy = (
        Scaffold(min_train_nodes=2, min_available_nodes=2) if use_scaffold else FedAvg(min_train_nodes=2)
    )
    x = to_arrays({"w": torch.zeros(2)})
    drift: list[float] = []
    for server_round in range(1, rounds + 1):
        messages = list(strategy.configure_train(server_round, x, ConfigRecord({"lr": lr}), nodes(2)))
        replies, drift = [], []
        for i, msg in enumerate(sorted(messages, key=lambda m: m.metadata.dst_node_id)):
            w = from_arrays(msg.content["arrays"])["w"].clone()
            start = w.clone()
            client = (
                ScaffoldClient.begin(msg.content, tmp_path / f"c{i}", server_round) if use_scaffold else None
            )
            for _ in range(steps):  # plain local SGD, gradient corrected as train_lora does
                grad = CURVATURE[i] * (w - OPTIMA[i])
                if client is not None:
                    grad = grad + client.correction["w"]
                w -= lr * grad
            drift.append(float((w - start).norm()))
            delta = client.finish({"w": w}, steps=steps, lr=lr) if client is not None else None
            replies.append(reply({"w": w}, 10, delta))
        x, _ = strategy.aggregate_train(server_round, replies)
    return from_arrays(x)["w"], drift


def test_scaffold_reaches_the_global_optimum_where_fedavg_drifts(tmp_path):
    w_scaffold, drift_scaffold = run_toy(tmp_path / "scaffold", use_scaffold=True)
    w_fedavg, drift_fedavg = run_toy(tmp_path / "fedavg", use_scaffold=False)
    assert torch.allclose(w_scaffold, OPTIMUM, atol=1e-4), w_scaffold
    assert (w_fedavg - OPTIMUM).norm() > 0.05, w_fedavg  # FedAvg's fixed point is biased
    # at SCAFFOLD's fixed point the corrected local steps stop drifting from the global model
    assert max(drift_scaffold) < 1e-3 < min(drift_fedavg)


def test_client_control_store_keeps_round_versions(tmp_path):
    store = ClientControlStore(tmp_path)
    like = {"w": torch.zeros(2)}
    assert torch.equal(store.load_before(1, like)["w"], torch.zeros(2))  # zero at first
    for r in (1, 2, 3):
        store.save(r, {"w": torch.full((2,), float(r))})
    assert store.rounds() == [2, 3]  # the newest two are kept
    assert store.load_before(4, like)["w"].tolist() == [3.0, 3.0]
    assert store.load_before(3, like)["w"].tolist() == [2.0, 2.0]  # a replayed round starts from before it


# ---------------------------------------------------------------------------------- real rounds

SGD = [
    "train.optimizer=sgd",
    "train.max_grad_norm=0",
    "train.lr_schedule=constant",
    "train.learning_rate=0.05",
]


def test_scaffold_rounds_store_controls_and_double_the_traffic(tiny_model_dir, pairs_jsonl, tmp_path):
    runs = {}
    for name in ("fedavg", "scaffold"):
        cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / name, f"strategy.name={name}", *SGD)
        run(cfg)
        runs[name] = RunDir(tmp_path / name)
    fedavg_rows, scaffold_rows = runs["fedavg"].read_metrics()[1:], runs["scaffold"].read_metrics()[1:]
    for fa, sc in zip(fedavg_rows, scaffold_rows, strict=True):
        assert sc["clients"] == 3 and sc["failures"] == 0
        assert sc["bytes_up"] == 2 * fa["bytes_up"] and sc["bytes_down"] == 2 * fa["bytes_down"]

    # round 1: c = c_i = 0, so the correction is zero and the adapter is FedAvg's
    def adapter(rd: RunDir, r: int) -> dict[str, torch.Tensor]:
        return load_file(str(rd.adapter(r) / "adapter_model.safetensors"))

    a1, b1 = adapter(runs["fedavg"], 1), adapter(runs["scaffold"], 1)
    assert all(torch.allclose(a1[k], b1[k], atol=1e-7) for k in a1)
    a2, b2 = adapter(runs["fedavg"], 2), adapter(runs["scaffold"], 2)
    assert not all(torch.allclose(a2[k], b2[k], atol=1e-7) for k in a2)  # round 2 is corrected

    # each client keeps c_i; with every client in every round, c = mean(c_i) exactly
    controls = []
    for i in range(3):
        store = ClientControlStore(tmp_path / "scaffold" / "clients" / f"client-{i}")
        assert store.rounds() == [1, 2]
        controls.append(load_file(str(store.path(2))))
    c = runs["scaffold"].load_checkpoint().strategy.tensors["server_control"]
    assert set(c) == set(controls[0])
    for k, v in c.items():
        mean = sum(ci[k] for ci in controls) / 3
        assert mean.abs().max() > 0
        np.testing.assert_allclose(v, mean.numpy(), rtol=1e-4, atol=1e-6)


class CrashAfterClients(InProcessGrid):
    """The server dies after the clients of round ``crash_after`` trained (and stored their new c_i)."""

    def __init__(self, client_app, num_nodes: int, run_config: dict, crash_after: int) -> None:
        super().__init__(client_app, num_nodes, run_config)
        self.crash_after = crash_after

    def send_and_receive(self, messages, *, timeout=None):
        replies = super().send_and_receive(messages, timeout=timeout)
        if self.rounds_sent == self.crash_after:
            raise SimulatedCrash(f"server killed after round {self.rounds_sent} was trained")
        return replies


@pytest.mark.parametrize("crash", ["before_clients", "after_clients"])
def test_scaffold_resume_ends_with_the_same_adapter(tiny_model_dir, pairs_jsonl, tmp_path, crash):
    over = ["strategy.name=scaffold", "federation.num_rounds=3", "strategy.fraction_train=0.67", *SGD]
    full = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "full", *over)
    run(full)
    part = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "part", *over)
    if crash == "before_clients":
        with pytest.raises(SimulatedCrash):
            run(part, crash_at_round=3)
    else:
        run_config = {"config-toml": part.to_toml(), "run-dir": part.output.dir}
        grid = CrashAfterClients(client_app, 3, run_config, crash_after=3)
        with pytest.raises(SimulatedCrash):
            run_rounds(grid, part, RunDir(part.output.dir).path)
    assert RunDir(tmp_path / "part").load_checkpoint().round == 2
    run(part, resume=True)
    full_ckpt, part_ckpt = (
        RunDir(tmp_path / "full").load_checkpoint(),
        RunDir(tmp_path / "part").load_checkpoint(),
    )
    a, b = full_ckpt.adapter, part_ckpt.adapter
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    ca, cb = full_ckpt.strategy.tensors["server_control"], part_ckpt.strategy.tensors["server_control"]
    assert all(np.allclose(ca[k], cb[k], atol=1e-5) for k in ca)
