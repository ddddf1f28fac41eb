"""Aggregation strategies by name.

Flower's own strategies (``flwr.serverapp.strategy``) built from ``StrategyConfig``, plus what
Flower lacks (SCAFFOLD, in ``scaffold.py``). ``registry.build_strategy`` wraps each in
``RoundRecorder`` so the round driver can read what a round sent, received and lost, and gives
it explicit cross-round state (``state.py``) that the driver snapshots, restores when the gate
refuses a round, re-bases after server CAI and checkpoints for resume.
"""

from fedrai.strategies.registry import STRATEGY_NAMES, build_strategy

__all__ = ["STRATEGY_NAMES", "build_strategy"]
