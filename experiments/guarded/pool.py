"""The red-team pool server CAI draws from: counts read, removed and kept, and the histogram of each
prompt's nearest AdvBench cosine (all-MiniLM-L6-v2) that the near-duplicate threshold was chosen from.

    OMP_NUM_THREADS=1 python experiments/guarded/pool.py   # -> experiments/results/guarded/redteam_pool.json
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fedrai.safety.redteam import DEFAULT_SOURCES, load_pool, nearest_similarities


def main(out: str = "experiments/results/guarded/redteam_pool.json") -> None:
    torch.set_num_threads(1)
    pool, report = load_pool()
    sims = nearest_similarities()
    edges = [0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.01]
    counts, _ = np.histogram(sims, bins=edges)
    result = {
        "sources": list(DEFAULT_SOURCES),
        "report": asdict(report),
        "nearest_advbench_cosine_histogram": {
            f"[{lo:.2f}, {hi:.2f})": int(c) for lo, hi, c in zip(edges, edges[1:], counts, strict=False)
        },
        "threshold_note": "pairs at 0.75-0.85 are the same request reworded (rob a bank at gunpoint / rob a "
        "bank; pipe bomb / bomb at home); below 0.75 they share a harm category but ask for different things "
        "(ransomware script / ransomware virus at 0.74 is the closest kept)",
        "sample": pool[:10],
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result["report"], indent=1))


if __name__ == "__main__":
    main()
