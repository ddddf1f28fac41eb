"""Aggregation strategies by name.

Flower's own strategies (``flwr.serverapp.strategy``) built from ``StrategyConfig``, plus what
Flower lacks (SCAFFOLD, in ``scaffold.py``). ``registry.build_strategy`` wraps each in
``RoundRecorder`` so the round driver can read what a round sent, received and lost, and gives
it explicit cross-round state (``state.py``) that the driver snapshots, restores when the gate
refuses a round, re-bases after server CAI and checkpoints for resume.
"""

from fedrai.config import STRATEGY_NAMES as CONFIG_STRATEGY_NAMES
from fedrai.strategies.registry import STRATEGY_NAMES, build_strategy

if set(STRATEGY_NAMES) != set(CONFIG_STRATEGY_NAMES):  # the config validates names without importing Flower
    raise ImportError(
        "fedrai.strategies builds "
        f"{sorted(STRATEGY_NAMES)} but fedrai.config.STRATEGY_NAMES lists {sorted(CONFIG_STRATEGY_NAMES)}: "
        "keep them the same"
    )

__all__ = ["STRATEGY_NAMES", "build_strategy"]
