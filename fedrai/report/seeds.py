"""Runs of one setting over several seeds: mean and spread (min-max) of every headline figure.

A sweep with ``seeds = [0, 1, 2]`` gives one run per seed; a single run shows what one seed drew,
the group shows how much of a difference survives another draw of clients, data and prompts.
Runs are grouped by (setting, aggregation), in the order their first run appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedrai.report.runs import Run


@dataclass(frozen=True)
class Spread:
    mean: float
    low: float
    high: float
    n: int


@dataclass
class SeedGroup:
    setting: str
    strategy: str
    runs: list[Run]

    @property
    def label(self) -> str:
        return f"{self.setting}, {self.strategy}"

    def seeds(self) -> list[int]:
        return sorted(int(r.config.get("seed", 0)) for r in self.runs)

    def final(self, key: str) -> tuple[Spread | None, bool]:
        """Spread of each run's headline figure (final set when every run has one)."""
        values = [r.final(key) for r in self.runs]
        nums = [v for v, _ in values if v is not None]
        if not nums:
            return None, False
        return spread(nums), all(is_final for v, is_final in values if v is not None)

    def series(self, key: str) -> list[tuple[float, Spread]]:
        """Per round: the spread over the runs that have the metric in that round."""
        by_round: dict[float, list[float]] = {}
        for run in self.runs:
            for x, y in zip(*run.series(key), strict=True):
                by_round.setdefault(x, []).append(y)
        return [(x, spread(ys)) for x, ys in sorted(by_round.items())]


def spread(values: Sequence[float]) -> Spread:
    return Spread(sum(values) / len(values), min(values), max(values), len(values))


def group_by_setting(runs: Sequence[Run]) -> list[SeedGroup]:
    """Base-model runs are left out (one per seed is a reference, not a setting)."""
    groups: dict[tuple[str, str], SeedGroup] = {}
    for run in runs:
        if run.is_base_model:
            continue
        key = (run.setting, run.strategy)
        groups.setdefault(key, SeedGroup(run.setting, run.strategy, [])).runs.append(run)
    return list(groups.values())


def has_seeds(runs: Sequence[Run]) -> bool:
    """True when some setting was run with more than one seed."""
    return any(len(g.runs) > 1 for g in group_by_setting(runs))
