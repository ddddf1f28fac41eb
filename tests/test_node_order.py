"""Seeded client sampling picks the same partitions whatever ids and order Flower gives the nodes."""

from __future__ import annotations

import random

from flwr.app import Context, MessageType, RecordDict

from fedrai.client_app import app as client_app
from fedrai.rounds import run_rounds
from fedrai.run_dir import RunDir
from fedrai.strategies.node_order import PartitionOrderedGrid
from tests.inprocess import InProcessGrid
from tests.test_rounds import make_config


def scrambled_grid(seed: int, num_nodes: int, run_config: dict, *, unplaced: int = 0) -> InProcessGrid:
    """Random node ids in a random order, as Flower's simulation hands them out (a set of random ints);
    the last ``unplaced`` nodes have no partition id, as deployed sites."""
    grid = InProcessGrid(client_app, num_nodes, run_config)
    rng = random.Random(seed)
    ids = rng.sample(range(1, 10**9), num_nodes)
    partitions = list(range(num_nodes - unplaced))
    rng.shuffle(partitions)
    grid.contexts = {
        node: Context(
            run_id=1,
            node_id=node,
            node_config={"partition-id": p, "num-partitions": num_nodes} if p is not None else {},
            state=RecordDict(),
            run_config=dict(run_config),
        )
        for node, p in zip(ids, partitions + [None] * unplaced, strict=True)
    }
    return grid


def partition_of(grid: InProcessGrid, node: int) -> int | None:
    return grid.contexts[node].node_config.get("partition-id")


def test_nodes_are_listed_by_partition_and_asked_once():
    grid = scrambled_grid(3, 6, {}, unplaced=2)
    ordered = PartitionOrderedGrid(grid)
    nodes = list(ordered.get_node_ids())
    assert [partition_of(grid, n) for n in nodes] == [0, 1, 2, 3, None, None]
    assert nodes[4:] == sorted(nodes[4:])  # sites without a partition: by node id
    asked = len(grid.received)
    assert asked == 6 and list(ordered.get_node_ids()) == nodes and len(grid.received) == asked
    # the seeded draw of Flower's sampler lands on the same partitions for other ids and orders
    picks = []
    for seed in (1, 3):
        g = scrambled_grid(seed, 6, {})
        random.seed(11)
        picks.append(
            sorted(partition_of(g, n) for n in random.sample(list(PartitionOrderedGrid(g).get_node_ids()), 3))
        )
    assert picks[0] == picks[1]


def test_asking_the_nodes_leaves_the_seeded_draw_alone():
    # Flower's heartbeat and retry jitter draw from `random` while the ask's round trip lasts (a number of
    # draws that depends on timing): the sample drawn after it must be the one the seed gives.
    grid = scrambled_grid(5, 6, {})
    send = grid.send_and_receive

    def jittery(messages, *, timeout=None):
        random.random()  # what a background thread does meanwhile
        return send(messages, timeout=timeout)

    grid.send_and_receive = jittery
    random.seed(7)
    expected = random.sample(range(6), 3)
    random.seed(7)
    ordered = PartitionOrderedGrid(grid)
    nodes = list(ordered.get_node_ids())
    assert [nodes.index(n) for n in random.sample(nodes, 3)] == expected


def test_a_sampled_run_trains_the_same_partitions_whatever_the_node_ids(
    tiny_model_dir, pairs_jsonl, tmp_path
):
    trained, orders = [], []
    for seed in (1, 3):  # these two scrambles list the partitions in different orders
        cfg = make_config(
            tiny_model_dir,
            pairs_jsonl,
            tmp_path / f"run{seed}",
            "strategy.fraction_train=0.5",
            "strategy.min_train_clients=2",
            "federation.num_clients=4",
            "strategy.min_available_clients=4",
        )
        grid = scrambled_grid(seed, 4, {"config-toml": cfg.to_toml(), "run-dir": cfg.output.dir})
        orders.append([partition_of(grid, n) for n in grid.get_node_ids()])
        rounds: list[list[int | None]] = []
        send = grid.send_and_receive

        def recording(messages, *, timeout=None, send=send, grid=grid, rounds=rounds):
            messages = list(messages)
            if messages and messages[0].metadata.message_type == MessageType.TRAIN:
                rounds.append(sorted(partition_of(grid, m.metadata.dst_node_id) for m in messages))
            return send(messages, timeout=timeout)

        grid.send_and_receive = recording
        run_rounds(grid, cfg, RunDir(cfg.output.dir).path)
        trained.append(rounds)
    assert len(trained[0]) == 2 and all(len(r) == 2 for r in trained[0])
    assert orders[0] != orders[1]
    assert trained[0] == trained[1]
