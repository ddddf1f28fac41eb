"""What the plots say beside the data: line labels, round ticks, sample sizes, point labels.

Pure functions of the runs (no matplotlib), so the rules are tested without reading pixels:
lines are named by what differs between runs (setting, strategy, seed), not by cell ids; rounds
are whole numbers, also for a one-round run; a rate says on how many prompts it was measured;
round numbers on the trade-off plane are written once per spot, not once per run on top of each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fedrai.report.runs import Run

MAX_ROUND_TICKS = 12


def run_label(run: Run) -> str:
    """``FL + filter, FedAvg, seed 0``; a base-model run is ``base model, seed 0``."""
    seed = run.config.get("seed", 0)
    if run.is_base_model:
        return f"base model, seed {seed}"
    return f"{run.setting}, {run.strategy}, seed {seed}"


def run_labels(runs: Sequence[Run]) -> list[str]:
    """One label per run; the run's name is added only where two runs would otherwise read the same."""
    labels = [run_label(run) for run in runs]
    return [
        f"{label} ({run.name})" if labels.count(label) > 1 else label
        for label, run in zip(labels, runs, strict=True)
    ]


def round_ticks(rounds: Iterable[float]) -> list[int]:
    """Whole-number ticks from the first to the last round, at most :data:`MAX_ROUND_TICKS`."""
    whole = sorted({int(round(r)) for r in rounds if math.isfinite(r)})
    if not whole:
        return []
    first, last = whole[0], whole[-1]
    step = max(1, math.ceil((last - first + 1) / MAX_ROUND_TICKS))
    return list(range(first, last + 1, step))


def round_limits(ticks: Sequence[int]) -> tuple[float, float]:
    """x limits with half a round of margin, so one round is a point in the middle, not a smear."""
    return (ticks[0] - 0.5, ticks[-1] + 0.5) if len(ticks) == 1 else (ticks[0] - 0.15, ticks[-1] + 0.15)


def _span(values: Iterable[float]) -> str:
    found = sorted({int(v) for v in values})
    if not found:
        return ""
    return str(found[0]) if len(found) == 1 else f"{found[0]}-{found[-1]}"


def sample_note(runs: Sequence[Run], key: str) -> str | None:
    """``n = 32 prompts per round, 520 final`` for a rate (None when the runs record no n)."""
    prefix = key.split(".")[0]
    per_round = _span(
        row[f"{prefix}.n"] for run in runs for row in run.rounds if _is_count(row.get(f"{prefix}.n"))
    )
    final = _span(
        row[f"final.{prefix}.n"]
        for run in runs
        for row in run.rounds
        if _is_count(row.get(f"final.{prefix}.n"))
    )
    if not per_round and not final:
        return None
    parts = [f"{per_round} prompts per round"] if per_round else []
    if final:
        parts.append(f"{final} in the final set (star)")
    return "n = " + ", ".join(parts)


def _is_count(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class PointLabel:
    x: float
    y: float
    text: str
    color: str


def point_labels(points: Iterable[tuple[float, float, int, str]]) -> list[PointLabel]:
    """Round numbers for (x, y, round, color) points, one label per spot.

    Points closer than half a percentage point share a label (``0`` once for four runs that all
    start at the origin; ``1,2`` for a run that stayed put); a label shared by runs is black.
    """
    spots: dict[tuple[int, int], list[tuple[float, float, int, str]]] = {}
    for x, y, rnd, color in points:
        spots.setdefault((round(2 * x), round(2 * y)), []).append((x, y, rnd, color))
    labels = []
    for group in spots.values():
        rounds = sorted({rnd for _, _, rnd, _ in group})
        colors = {color for _, _, _, color in group}
        x, y = group[0][0], group[0][1]
        labels.append(
            PointLabel(x, y, ",".join(map(str, rounds)), colors.pop() if len(colors) == 1 else "black")
        )
    return labels
