"""Resident memory of the real Ray client actors: the demo's client work through the simulation.

    python benchmarks/memory_simulation.py --label after [--out benchmarks/results/memory.json]

Runs the demo preset with what the clients do unchanged (embedded filter on the client's
partition, 6 local steps of batch 4 x 256 tokens, SmolLM2-135M fp32, LoRA r=8, 2 Ray actors) but
one round, no server evaluation and no server CAI, so the clients dominate. Samples every process
of the run twice a second (per-process peak RSS, and the peak of their sum) and, where the client
reports it, reads each actor's own ``ru_maxrss`` from ``clients.jsonl``. Run it as a script with
``PYTHONPATH`` pointing at the fedrai to measure (e.g. an export of an older commit for "before");
it imports nothing from ``benchmarks``. Merges its figures into ``memory.json`` under
``simulation.<label>``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


def kind(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        argv = proc.cmdline()
        cmd = " ".join(argv)
        if "ClientAppActor" in cmd:
            return "client_actor"
        if "default_worker.py" in cmd:
            return "other"  # a Ray worker before it hosts an actor (it renames itself then)
        if "flwr-simulation" in cmd:
            return "server_driver"
        exe = Path(argv[0]).name if argv else ""
        if exe in ("raylet", "gcs_server"):
            return exe
        for name in ("flower-superlink", "flower-superexec", "flwr run"):
            if name in cmd:
                return name
    return "other"


class Sampler:
    def __init__(self) -> None:
        self.per_pid: dict[int, dict] = {}
        self.total_peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.5):
            total = 0.0
            for proc in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss = proc.memory_info().rss / 2**20
                    total += rss
                    entry = self.per_pid.setdefault(proc.pid, {"kind": kind(proc), "peak_mb": 0.0})
                    if entry["kind"] == "other":
                        entry["kind"] = kind(proc)  # a Ray worker renames itself once it hosts an actor
                    entry["peak_mb"] = max(entry["peak_mb"], rss)
                    if entry["kind"] == "client_actor":  # PSS splits pages shared with other processes
                        pss = proc.memory_full_info().pss / 2**20
                        entry["peak_pss_mb"] = max(entry.get("peak_pss_mb", 0.0), pss)
            self.total_peak_mb = max(self.total_peak_mb, total)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", required=True, help="Key under simulation.* (e.g. before / after).")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "memory.json")
    args = parser.parse_args()

    import fedrai.config
    from fedrai.config import ExperimentConfig
    from fedrai.runtime import run_simulation

    preset = Path(fedrai.config.__file__).parent / "presets" / "demo.toml"
    cfg = ExperimentConfig.from_toml(
        preset,
        ["federation.num_rounds=1", "eval.enabled=false", 'cai.placement="none"', "gate.enabled=false"],
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="fedrai-memsim-"))
    t0 = time.perf_counter()
    with Sampler() as sampler:
        run_simulation(cfg, work / "run", timeout_s=1800)
    seconds = time.perf_counter() - t0
    by_kind: dict[str, list[float]] = {}
    for entry in sampler.per_pid.values():
        by_kind.setdefault(entry["kind"], []).append(round(entry["peak_mb"], 1))
    clients_file = work / "run" / "clients.jsonl"
    reported = []
    if clients_file.is_file():
        reported = [json.loads(line) for line in clients_file.read_text().splitlines() if line.strip()]
    commit = subprocess.run(
        ["git", "-C", str(Path(fedrai.config.__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    result = {
        "fedrai": str(Path(fedrai.config.__file__).parent),
        "commit": commit or None,
        "run": "demo preset, 1 round, eval off, server CAI off, gate off (client work unchanged)",
        "seconds": round(seconds, 1),
        "client_actor_peak_mb_sampled": sorted(by_kind.get("client_actor", []), reverse=True),
        "client_actor_peak_pss_mb_sampled": sorted(
            (
                round(e.get("peak_pss_mb", 0.0), 1)
                for e in sampler.per_pid.values()
                if e["kind"] == "client_actor"
            ),
            reverse=True,
        ),
        "client_actor_peak_mb_reported": [round(r.get("client.peak_rss_mb", 0.0), 1) for r in reported],
        "server_driver_peak_mb": max(by_kind.get("server_driver", [0.0])),
        "all_processes_peak_sum_mb": round(sampler.total_peak_mb, 1),
        "per_kind_peak_mb": {k: max(v) for k, v in sorted(by_kind.items())},
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
    doc.setdefault("simulation", {})[args.label] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
