"""A toy Flower app (FedAvg over one numpy array) for testing the simulation harness without LLMs.

Components: ``tests.flower_toy_app:server`` and ``tests.flower_toy_app:client`` (the repo root must
be on PYTHONPATH of the Flower processes). The ServerApp records what its process sees (cwd, env,
run config keys) in ``<run-dir>/toy_server.json`` so tests can check what reaches it.
``tests.flower_toy_app:failing_server`` raises, to test failure reporting.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

COMPONENTS = ("tests.flower_toy_app:server", "tests.flower_toy_app:client")

server = ServerApp()
failing_server = ServerApp()
client = ClientApp()


@failing_server.main()
def failing_main(grid: Grid, context: Context) -> None:
    raise RuntimeError("toy ServerApp failing on purpose")


@server.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    print(f"TOY-SERVER-PRINT cwd={os.getcwd()}", flush=True)
    print("TOY-SERVER-STDERR", file=sys.stderr, flush=True)
    run_dir = Path(str(cfg.get("run-dir", "")) or ".")
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=2, min_train_nodes=2)
    result = strategy.start(
        grid=grid, initial_arrays=ArrayRecord([np.zeros(4, dtype=np.float32)]), num_rounds=2, timeout=120
    )
    final = result.arrays.to_numpy_ndarrays()[0]
    record = {
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "flwr_home": os.environ.get("FLWR_HOME", ""),
        "toy_env": os.environ.get("FEDRAI_TOY_ENV", ""),
        "run_config_keys": sorted(cfg),
        "resume": cfg.get("resume"),
        "config_toml": str(cfg.get("config-toml", "")),
        "node_ids": sorted(int(n) for n in grid.get_node_ids()),
        "final": final.tolist(),
    }
    (run_dir / "toy_server.json").write_text(json.dumps(record, indent=1), encoding="utf-8")


@client.train()
def train(msg: Message, context: Context) -> Message:
    arrays = msg.content["arrays"].to_numpy_ndarrays()
    print(
        f"TOY-CLIENT-PRINT pid={os.getpid()} cwd={os.getcwd()} env={os.environ.get('FEDRAI_TOY_ENV', '')}"
        f" flwr_home={os.environ.get('FLWR_HOME', '')}",
        flush=True,
    )
    pid = int(context.node_config.get("partition-id", 0))
    updated = [a + 1.0 + pid for a in arrays]
    content = RecordDict(
        {"arrays": ArrayRecord(updated), "metrics": MetricRecord({"num-examples": 10 * (pid + 1)})}
    )
    return Message(content=content, reply_to=msg)
