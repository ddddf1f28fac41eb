"""Framework cost on the embedded default: traffic, overhead of Flower + Ray, start-up, memory.

    python -m benchmarks.foundation [--rounds 3] [--steps 4]

Runs a small FedAvg experiment on SmolLM2-135M-Instruct through the real SuperLink + Ray
simulation (evaluation and guards off, so only the framework and training are measured), then
the same local training in one process without Flower, and writes
``benchmarks/results/foundation.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

from fedrai.config import ExperimentConfig
from fedrai.data.client_data import client_rows
from fedrai.model import count_parameters, load_model
from fedrai.run_dir import RunDir
from fedrai.runtime import run_simulation
from fedrai.training import round_learning_rate, train_lora

RESULTS = Path(__file__).parent / "results"


def bench_config(rounds: int, steps: int, run_dir: Path) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "name": "bench-foundation",
            "model": {"name_or_path": "embedded:smollm2-135m-instruct", "max_seq_length": 256},
            "lora": {"r": 8, "alpha": 16},
            "data": {"source": "embedded:instructlab", "max_rows": 200, "heldout_rows": 0},
            "train": {"local_steps": steps, "batch_size": 4},
            "federation": {"num_clients": 2, "num_rounds": rounds, "wire_dtype": "float16"},
            "strategy": {"min_train_clients": 2, "min_available_clients": 2},
            "eval": {"enabled": False},
            "output": {"dir": str(run_dir)},
        }
    )


class TreeSampler:
    """Peak resident memory of this process and all its descendants (Ray workers included)."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a process may end while we look
                    total += p.memory_info().rss
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval_s)


def federated(cfg: ExperimentConfig, run_dir: Path) -> dict:
    first_row_at: list[float] = []
    t0 = time.monotonic()

    def watch(line: str) -> None:
        if "[fedrai] round 0/" in line and not first_row_at:
            first_row_at.append(time.monotonic() - t0)

    with TreeSampler() as sampler:
        result = run_simulation(cfg, run_dir, on_output=watch)
    rows = RunDir(run_dir).read_metrics()
    trained = [r for r in rows if r["round"] > 0]
    steady = [r["seconds"] for r in trained[1:]] or [trained[0]["seconds"]]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "wall_seconds": result.seconds,
        "superlink_start_seconds": result.superlink_start_s,
        "startup_seconds_to_server_ready": first_row_at[0] if first_row_at else None,
        "first_round_seconds": trained[0]["seconds"],
        "steady_round_seconds": sum(steady) / len(steady),
        "round_seconds": [r["seconds"] for r in trained],
        "bytes_up_per_round": trained[-1]["bytes_up"],
        "bytes_down_per_round": trained[-1]["bytes_down"],
        "clients_per_round": trained[-1]["clients"],
        "peak_rss_mb_all_processes": sampler.peak_bytes / 2**20,
        "summary": summary,
    }


def single_process(cfg: ExperimentConfig) -> dict:
    """The same local training (every client of a round, one after another) with no Flower at all."""
    with TreeSampler() as sampler:
        t = time.monotonic()
        model, tokenizer = load_model(cfg.model, cfg.lora, cfg.seed)
        load_s = time.monotonic() - t
        per_round = []
        for server_round in range(1, cfg.federation.num_rounds + 1):
            t = time.monotonic()
            for pid in range(cfg.federation.num_clients):
                train_lora(
                    model,
                    tokenizer,
                    client_rows(cfg, pid),
                    steps=cfg.train.local_steps,
                    batch_size=cfg.train.batch_size,
                    grad_accum=cfg.train.grad_accum,
                    learning_rate=round_learning_rate(cfg.train, server_round, cfg.federation.num_rounds),
                    max_seq_length=cfg.model.max_seq_length,
                    seed=server_round * 100 + pid,
                )
            per_round.append(time.monotonic() - t)
    steady = per_round[1:] or per_round
    trainable, total = count_parameters(model)
    return {
        "model_load_seconds": load_s,
        "round_seconds": per_round,
        "steady_round_seconds": sum(steady) / len(steady),
        "peak_rss_mb": sampler.peak_bytes / 2**20,
        "adapter_parameters": trainable,
        "model_parameters": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedrai-bench-") as tmp:
        cfg = bench_config(args.rounds, args.steps, Path(tmp) / "run")
        fed = federated(cfg, Path(tmp) / "run")
    single = single_process(cfg)
    s = fed["summary"]
    out = {
        "benchmark": "foundation",
        "machine": {"cpus": psutil.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "setting": {
            "model": cfg.model.name_or_path,
            "lora_r": cfg.lora.r,
            "targets": cfg.lora.target_modules,
            "clients": cfg.federation.num_clients,
            "rounds": cfg.federation.num_rounds,
            "local_steps": cfg.train.local_steps,
            "batch_size": cfg.train.batch_size,
            "wire_dtype": cfg.federation.wire_dtype,
        },
        "traffic": {
            "adapter_parameters": s["adapter_parameters"],
            "model_parameters": s["model_parameters"],
            "adapter_share_of_model_parameters": s["adapter_share_of_model"],
            "bytes_up_per_client_per_round": fed["bytes_up_per_round"] / fed["clients_per_round"],
            "bytes_down_per_client_per_round": fed["bytes_down_per_round"] / fed["clients_per_round"],
            "full_model_bytes_fp32": s["model_parameters"] * 4,
            "upload_share_of_full_model_fp32": fed["bytes_up_per_round"]
            / fed["clients_per_round"]
            / (s["model_parameters"] * 4),
        },
        "federated": {k: v for k, v in fed.items() if k != "summary"},
        "single_process": single,
        "overhead": {
            "steady_round_ratio_flower_ray_over_single_process": fed["steady_round_seconds"]
            / single["steady_round_seconds"],
            "note": "Ray runs the clients of a round in parallel (1 CPU each); the single process runs them "
            "one after another with all cores.",
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "foundation.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: out[k] for k in ("traffic", "overhead")}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
