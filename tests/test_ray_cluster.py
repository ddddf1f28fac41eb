"""Joining an existing Ray cluster: a two-node cluster on loopback, both nodes serve clients.

Each node offers one CPU and every client asks for one (``federation.cpus_per_client``), so
Flower's actor pool places one ClientApp actor on each node: Flower 1.42's federation config
carries only CPUs and GPUs per client (no custom Ray resources), and this is what pins the two
clients to different nodes. The run's ``clients.jsonl`` must then name two Ray nodes.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from fedrai.config import ExperimentConfig
from fedrai.run_dir import RunDir
from fedrai.runtime import run_simulation
from fedrai.runtime.flower_app import federation_config_args, ray_env
from tests.conftest import write_jsonl
from tests.ray_cluster import two_node_cluster


def test_existing_cluster_gets_no_init_args() -> None:
    items = federation_config_args(2, 1, 0.5, ray_num_cpus=4, existing_cluster=True)
    assert not any(i.startswith("init-args") for i in items)
    assert "client-resources-num-gpus=0.5" in items
    local = federation_config_args(2, 1, 0.0, ray_num_cpus=4)
    assert "init-args-num-cpus=4" in local and "init-args-num-gpus=0" in local


def test_ray_env_points_ray_init_at_the_cluster_or_a_private_one() -> None:
    assert ray_env("", {"RAY_ADDRESS": "10.0.0.1:6379"})["RAY_ADDRESS"] == "local"
    assert ray_env("ray://head:10001", {})["RAY_ADDRESS"] == "ray://head:10001"


def _config(tmp: Path, model_dir: Path, address: str) -> ExperimentConfig:
    data = write_jsonl(
        tmp / "pairs.jsonl",
        [{"prompt": f"How do I bake loaf {i}?", "response": f"Knead ({i})."} for i in range(16)],
    )
    return ExperimentConfig.from_dict(
        {
            "name": "two-nodes",
            "model": {"name_or_path": str(model_dir), "max_seq_length": 64},
            "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
            "data": {"source": str(data), "heldout_rows": 0},
            "federation": {"num_clients": 2, "num_rounds": 2, "cpus_per_client": 1, "ray_address": address},
            "strategy": {"min_train_clients": 2, "min_available_clients": 2},
            "train": {"local_steps": 1, "batch_size": 2},
            "eval": {"enabled": False},
            "output": {"dir": str(tmp / "run")},
        }
    )


@pytest.mark.slow
def test_two_node_cluster_serves_clients_on_both_nodes(tiny_model_dir: Path, tmp_path: Path) -> None:
    with two_node_cluster(cpus_per_node=1) as cluster:
        cfg = _config(tmp_path, tiny_model_dir, cluster.address)
        result = run_simulation(cfg, tmp_path / "run", timeout_s=600)
        started = cluster.processes()
        temp_dirs = [str(n.temp_dir) for n in cluster.nodes]
        raylet_logs = " ".join(
            p.read_text(errors="replace") for d in temp_dirs for p in Path(d).rglob("raylet.out")
        )
    assert result.status.endswith(":completed")
    run = RunDir(tmp_path / "run")
    rows = run.read_clients()
    assert [r["round"] for r in rows] == [1, 1, 2, 2]
    nodes = {r["node"] for r in rows}
    assert len(nodes) == 2 and all(len(n) == 56 for n in nodes), rows  # Ray node ids (hex)
    for server_round in (1, 2):  # every round, one client on each node
        assert {r["node"] for r in rows if r["round"] == server_round} == nodes
    assert all(r["client.peak_rss_mb"] > 50 for r in rows)
    metrics = run.read_metrics()
    assert [m.get("client.nodes") for m in metrics[1:]] == [2.0, 2.0]
    # Both nodes' raylets logged the ids the clients reported: these are our two nodes.
    assert all(n in raylet_logs for n in nodes)
    # Nothing is left running: not the nodes' processes, not anything using their temp dirs.
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    leftovers = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(d in cmd for d in temp_dirs):
            leftovers.append((proc.pid, cmd[:120]))
    assert not leftovers, leftovers
    assert not any(Path(d).exists() for d in temp_dirs)
    current = Path("/tmp/ray/ray_current_cluster")  # this machine's default Ray never learnt of ours
    assert not current.exists() or cluster.address not in current.read_text()
