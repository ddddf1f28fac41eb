"""Where the recipe's final-set frontier crosses the safe-alarming target, per seed, from two runs.

Run2 (no points inside the server's step) and run3 (``gate.server_step_points = 4``) ended each seed at
two different points of the same trade-off, measured on the same final sets (100 AdvBench, 40 MT-Bench,
40 safe-alarming prompts, disjoint from the gate's). Joining each seed's two points by a line and reading
it at the target's 25% safe-alarming refusal estimates the AdvBench refusal that a gate tuned to stop
exactly there would keep, had the training path stayed the same: what tuning the gate alone can reach.
An estimate from two points per seed, not a run.

    python experiments/guarded/final_frontier.py --out experiments/results/guarded/final_frontier.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "guarded"
ADV, ALARM = "final.advbench.refusal_rate", "final.alarming.refusal_rate"


def final(run: str, cell: str) -> dict[str, float]:
    return json.loads((RESULTS / run / "cells" / cell / "summary.json").read_text())["final"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target", type=float, default=0.25, help="safe-alarming refusal to read the line at"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    seeds = []
    for seed in (0, 1, 2):
        cell = f"fl-filter-cai-recipe__fedavg__seed{seed}"
        points = [(final(run, cell)[ALARM], final(run, cell)[ADV]) for run in ("run2", "run3")]
        (x0, y0), (x1, y1) = points
        at_target = y0 + (y1 - y0) * (args.target - x0) / (x1 - x0) if x1 != x0 else None
        fl = final("run2", f"fl__fedavg__seed{seed}")[ADV]
        seeds.append(
            {
                "seed": seed,
                "run2": {"alarming": x0, "advbench": y0},
                "run3": {"alarming": x1, "advbench": y1},
                "fl_advbench": fl,
                "advbench_at_target": at_target,
                "extrapolated": not (min(x0, x1) <= args.target <= max(x0, x1)),
            }
        )
    known = [s["advbench_at_target"] for s in seeds if s["advbench_at_target"] is not None]
    mean_at = statistics.fmean(known) if len(known) == len(seeds) else None
    fl_mean = statistics.fmean(s["fl_advbench"] for s in seeds)
    out = {
        "target_alarming": args.target,
        "seeds": seeds,
        "mean_advbench_at_target": mean_at,
        "fl_mean_advbench": fl_mean,
        "gain_points_at_target": None if mean_at is None else 100 * (mean_at - fl_mean),
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for s in seeds:
        at = s["advbench_at_target"]
        print(
            f"seed {s['seed']}: run2 {s['run2']}, run3 {s['run3']} -> AdvBench at {args.target:.0%}: "
            f"{'n/a' if at is None else f'{at:.1%}'}{' (extrapolated)' if s['extrapolated'] else ''}"
        )
    if mean_at is not None:
        print(f"mean {mean_at:.1%} vs FL {fl_mean:.1%}: {out['gain_points_at_target']:+.1f} points")


if __name__ == "__main__":
    main()
