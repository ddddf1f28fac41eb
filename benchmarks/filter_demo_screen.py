"""What each filter design does to the demo's client data (the rows the clients screen before training).

Scores every client's rows of the demo preset (``fedrai/presets/demo.toml``: instructlab pairs, ~30%
harmful pairs, 10% contrast rows) with the ``factored`` and the ``embedded`` backends, per row group,
without training anything: flagged rows would be dropped (``safety.action = "drop"``), so
``harmful kept`` is what would reach local training. Writes ``benchmarks/results/filter_demo_screen.json``.

    nice -n 15 python benchmarks/filter_demo_screen.py

Note: the demo's harmful rows come from the harmful-pairs asset that both heads were trained on
(its train split), so their flag rates are closer to in-split than to held-out figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "filter_demo_screen.json")
    ap.add_argument("--backends", nargs="*", default=["factored", "embedded"])
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from fedrai.cli import DEMO_EXPERIMENT, load_experiment
    from fedrai.data import prompt_of
    from fedrai.data.client_data import client_rows
    from fedrai.safety.filters import build_filter

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_experiment(DEMO_EXPERIMENT, [], Path(tmp))
        rows = [r for pid in range(cfg.federation.num_clients) for r in client_rows(cfg, pid)]
    groups = [r.get("group") if r.get("group") in ("harmful", "contrast") else "instructlab" for r in rows]
    out: dict = {"rows": len(rows), "threshold": cfg.safety.threshold, "backends": {}}
    for backend in args.backends:
        f = build_filter(cfg.safety.model_copy(update={"backend": backend}))
        t0 = time.time()
        verdicts = f.score([prompt_of(r) for r in rows], [r.get("response") for r in rows])
        by: dict[str, dict[str, int]] = {}
        for g, v in zip(groups, verdicts, strict=True):
            d = by.setdefault(g, {"n": 0, "flagged": 0})
            d["n"] += 1
            d["flagged"] += int(v.flagged(cfg.safety.threshold))
        out["backends"][backend] = {
            "by_group": by,
            "flagged": sum(d["flagged"] for d in by.values()),
            "harmful_kept": by["harmful"]["n"] - by["harmful"]["flagged"],
            "seconds": round(time.time() - t0, 1),
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }
        print(backend, out["backends"][backend], flush=True)
    args.out.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
