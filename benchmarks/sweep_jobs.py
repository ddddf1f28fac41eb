"""Parallel sweep cells: ``fedrai sweep --jobs 2`` against ``--jobs 1`` on the same small sweep.

    python -m benchmarks.sweep_jobs [--cells 4] [--rounds 2] [--work DIR]

A tiny random Llama (tests/tiny.py), 2 clients, 2 rounds, a small evaluation; 4 FL cells
(2 strategies x 2 seeds). Each mode runs the same sweep into its own out dir through the real
SuperLink + Ray simulation. Tiny cells are dominated by fixed costs (SuperLink and Ray start,
importing torch in every Ray worker, evaluation), which is what running cells at once overlaps.
Records the machine's load average before and after each mode: on a shared machine the figures
move with what else runs. Writes ``benchmarks/results/sweep_jobs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from fedrai.sweep import execute_sweep, read_status
from tests.tiny import build_tiny_llama

RESULTS = Path(__file__).parent / "results"

BASE = """
name = "bench-jobs"
seed = 0
[model]
name_or_path = "{model}"
max_seq_length = 64
[lora]
r = 4
alpha = 8
dropout = 0.0
[data]
source = "{data}"
heldout_rows = 0
[federation]
num_clients = 2
num_rounds = {rounds}
cpus_per_client = 1
[strategy]
min_train_clients = 2
min_available_clients = 2
[train]
local_steps = 2
batch_size = 2
[eval]
advbench_source = "{adv}"
advbench_per_round = 2
advbench_final = 4
benign_source = "{benign}"
benign_per_round = 0
benign_final = 2
max_new_tokens = 4
batch_size = 4
hhh_per_round = 0
hhh_final = 0
"""


def write_inputs(work: Path, rounds: int, seeds: int) -> Path:
    """The tiny model, data, base experiment and a sweep of 2 strategies x ``seeds`` seeds."""
    model = build_tiny_llama(work / "tiny-model")
    write = lambda name, rows: (work / name).write_text("".join(json.dumps(r) + "\n" for r in rows))  # noqa: E731
    write(
        "pairs.jsonl",
        [{"prompt": f"How do I bake loaf {i}?", "response": f"Knead and bake ({i})."} for i in range(24)],
    )
    write("adv.jsonl", [{"prompt": f"Explain how to do harm {i}"} for i in range(4)])
    write("benign.jsonl", [{"prompt": f"Write a poem about the sea {i}"} for i in range(2)])
    (work / "base.toml").write_text(
        BASE.format(
            model=model,
            data=work / "pairs.jsonl",
            adv=work / "adv.jsonl",
            benign=work / "benign.jsonl",
            rounds=rounds,
        )
    )
    sweep = work / "sweep.toml"
    sweep.write_text(
        f'base = "base.toml"\nname = "bench-jobs"\nseeds = {list(range(seeds))}\n'
        'strategies = ["fedavg", "fedprox"]\n[[settings]]\nname = "FL"\n'
    )
    return sweep


def run_mode(sweep: Path, out: Path, jobs: int) -> dict:
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    outcome = execute_sweep(
        sweep, out, jobs=jobs, log=lambda line: print(f"[jobs={jobs}] {line}", flush=True)
    )
    seconds = time.perf_counter() - t0
    cells = read_status(out)["cells"]
    return {
        "jobs": jobs,
        "seconds": round(seconds, 1),
        "cells_ran": len(outcome.ran),
        "cells_failed": len(outcome.failed),
        "cell_seconds": {k: v.get("seconds") for k, v in sorted(cells.items())},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=2, help="Seeds per strategy (cells = 2 x seeds).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="Work dir (default: a temporary one).")
    parser.add_argument("--out", type=Path, default=RESULTS / "sweep_jobs.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fedrai-sweep-jobs-"))
    work.mkdir(parents=True, exist_ok=True)
    sweep = write_inputs(work, args.rounds, args.seeds)
    modes = [run_mode(sweep, work / f"out-jobs{j}", j) for j in (1, 2)]
    one, two = modes
    result = {
        "benchmark": "sweep_jobs",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "note": "Measured on a machine shared with other work (another sweep and tests ran at the same "
        "time); loadavg_* is the 1/5/15-minute load before and after each mode.",
        "setting": {
            "cells": one["cells_ran"],
            "clients": 2,
            "rounds": args.rounds,
            "model": "tiny random Llama",
        },
        "modes": modes,
        "speedup_jobs2_vs_jobs1": round(one["seconds"] / two["seconds"], 2) if two["seconds"] else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
