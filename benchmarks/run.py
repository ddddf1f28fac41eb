"""Run every CPU benchmark, one after another; each writes its JSON to benchmarks/results/.

    python -m benchmarks.run [NAME ...]      # default: all of them

The GPU check (``benchmarks.gpu_qlora``) is not included: it needs a CUDA machine.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = {
    "foundation": "framework traffic, Flower + Ray overhead, start-up, memory",
    "eval_throughput": "AdvBench generation, batched vs one prompt at a time",
    "filter_quality": "embedded safety filter: precision, recall, F1, AUC, rows/s",
    "deployment_overhead": "loopback deployment (TLS + node auth, SuperNodes) vs Ray simulation: round time",
}


def main() -> int:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmarks {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"== {name}: {BENCHMARKS[name]}", flush=True)
        t = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        print(f"== {name}: exit {rc} after {time.monotonic() - t:.0f} s", flush=True)
        if rc:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
