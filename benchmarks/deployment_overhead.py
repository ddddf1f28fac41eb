"""Per-round cost of a real deployment (SuperLink + SuperNodes, TLS + node auth) vs the Ray simulation.

    python -m benchmarks.deployment_overhead [--rounds 4] [--steps 8]

Runs the same experiment (SmolLM2-135M-Instruct, 2 clients, the embedded safety filter on,
evaluation off) three times on this machine: as a Ray simulation, as a loopback deployment with one
SuperNode per client (Flower's default: a fresh ClientApp process per message), and the same with
each site's warm SuperExec (``fedrai.runtime.warm_exec``). Steady-state round time = median ``seconds`` of rounds 2..N in each run's
``metrics.jsonl`` (round 1 pays start-up and the guard pass). Writes
``benchmarks/results/deployment_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import foundation
from fedrai.config import ExperimentConfig
from fedrai.run_dir import RunDir
from fedrai.runtime import run_simulation
from fedrai.runtime.deployment import run_loopback

RESULTS = Path(__file__).parent / "results"


def bench_config(rounds: int, steps: int, run_dir: Path) -> ExperimentConfig:
    """The foundation benchmark's experiment with the embedded filter on (a guarded site's work)."""
    cfg = foundation.bench_config(rounds, steps, run_dir)
    cfg.name = "bench-deployment"
    cfg.safety.enabled = True
    return cfg


def round_times(run_dir: Path) -> list[float]:
    return [float(r["seconds"]) for r in RunDir(run_dir).read_metrics() if r["round"] > 0]


def summarise(times: list[float], wall_s: float) -> dict[str, object]:
    return {
        "round_seconds": times,
        "first_round_s": times[0],
        "steady_round_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "wall_s": wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "deployment_overhead.json")
    args = parser.parse_args()

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="fedrai-bench-deploy-") as tmp:
        sim_dir = Path(tmp) / "simulation"
        t0 = time.monotonic()
        run_simulation(bench_config(args.rounds, args.steps, sim_dir), sim_dir)
        results["simulation"] = summarise(round_times(sim_dir), time.monotonic() - t0)
        print("simulation", results["simulation"], flush=True)

        for name, warm in (("deployment", False), ("deployment_warm", True)):
            dep_dir = Path(tmp) / name
            t0 = time.monotonic()
            loop = run_loopback(bench_config(args.rounds, args.steps, dep_dir), dep_dir, warm=warm)
            dep = summarise(round_times(dep_dir), time.monotonic() - t0)
            dep.update({"superlink_start_s": loop.superlink_start_s, "sites_online_s": loop.sites_online_s})
            results[name] = dep
            print(name, dep, flush=True)

    sim_steady = float(results["simulation"]["steady_round_s"])  # type: ignore[index]
    ratios = {
        name: float(results[name]["steady_round_s"]) / sim_steady  # type: ignore[index]
        for name in ("deployment", "deployment_warm")
    }
    doc = {
        "what": "steady-state round time, loopback deployment (TLS + node auth, 2 SuperNodes) / Ray simulation; "
        "deployment = a fresh flwr-clientapp process per message (Flower's default), deployment_warm = "
        "--isolation process + fedrai's forking SuperExec with the model preloaded",
        "config": bench_config(args.rounds, args.steps, Path("RUN")).model_dump(mode="json"),
        "ratio_deployment_over_simulation": ratios["deployment"],
        "ratio_deployment_warm_over_simulation": ratios["deployment_warm"],
        "target_ratio": 1.5,
        **results,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_end": os.getloadavg(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"ratios: cold {ratios['deployment']:.2f}, warm {ratios['deployment_warm']:.2f} -> {args.out}")


if __name__ == "__main__":
    main()
