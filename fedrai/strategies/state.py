"""A strategy's cross-round state, made explicit: what it is, snapshot, restore, re-base.

The round driver owns the global adapter. The acceptance gate may refuse a round (the clients
then start again from the previous adapter) and server-side CAI tunes the aggregate (the clients
then start from the tuned adapter). Either way the adapter the clients start from next is not
the one the strategy produced, so the strategy's own state must follow it:

- ``capture_state`` before ``aggregate_train``, ``restore_state`` when the gate refuses the round
  (then ``note_rejected``): the refused round leaves no trace in momentum or moments;
- ``rebase_state`` whenever the global adapter changed outside the strategy (after server CAI,
  and before every ``configure_train``): a pseudo-gradient is always measured from the adapter
  the clients actually started from.

Each family of strategies is a mixin over its Flower class that says what its state is. The
state is plain data (arrays by adapter key, JSON scalars), so a checkpoint stores it as
safetensors + JSON and never as a pickle.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord

from fedrai.checkpoint import Arrays, StrategyState

__all__ = ["FedAvgMState", "FedOptState", "StateError", "Stateless", "StrategyState", "state_mixin"]


class StateError(ValueError):
    """A saved strategy state that does not fit the strategy (a damaged or foreign checkpoint)."""


def _copied(arrays: Arrays | None) -> Arrays | None:
    return None if arrays is None else {k: np.array(v, copy=True) for k, v in arrays.items()}


def _record_arrays(record: ArrayRecord) -> Arrays:
    return {k: np.array(a.numpy(), copy=True) for k, a in record.items()}


def _check_groups(state: StrategyState, allowed: set[str], strategy: str) -> None:
    unknown = set(state.tensors) - allowed
    if unknown:
        raise StateError(f"{strategy} state holds unknown array groups {sorted(unknown)}")


class Stateless:
    """FedAvg, FedProx, FedMedian, FedTrimmedAvg, Krum: nothing carries over between rounds."""

    def capture_state(self) -> StrategyState:
        return StrategyState()

    def restore_state(self, state: StrategyState) -> None:
        _check_groups(state, set(), type(self).__name__)

    def rebase_state(self, arrays: ArrayRecord) -> None:
        """Nothing is measured from the previous adapter."""

    def note_rejected(self, server_round: int) -> None:
        """The gate refused ``server_round``; called after ``restore_state``."""


class FedAvgMState(Stateless):
    """FedAvgM: the adapter the pseudo-gradient is measured from, and the momentum buffer.

    Flower sets ``current_arrays`` once and then to its own aggregate; ``rebase_state`` points it
    at the adapter the clients start from instead.
    """

    current_arrays: ArrayRecord | None
    momentum_vector: list[np.ndarray] | None

    def capture_state(self) -> StrategyState:
        if self.current_arrays is None:
            return StrategyState()
        tensors = {"current_arrays": _record_arrays(self.current_arrays)}
        if self.momentum_vector is not None:
            keys = list(self.current_arrays.keys())
            tensors["momentum_vector"] = {
                k: np.array(m, copy=True) for k, m in zip(keys, self.momentum_vector, strict=True)
            }
        return StrategyState(tensors)

    def restore_state(self, state: StrategyState) -> None:
        _check_groups(state, {"current_arrays", "momentum_vector"}, "FedAvgM")
        current = state.tensors.get("current_arrays")
        momentum = state.tensors.get("momentum_vector")
        if momentum is not None and (current is None or list(momentum) != list(current)):
            raise StateError("FedAvgM state: the momentum buffer's keys differ from current_arrays'")
        self.current_arrays = (
            None
            if current is None
            else ArrayRecord({k: Array(np.array(v, copy=True)) for k, v in current.items()})
        )
        self.momentum_vector = (
            None if momentum is None else [np.array(v, copy=True) for v in momentum.values()]
        )

    def rebase_state(self, arrays: ArrayRecord) -> None:
        self.current_arrays = ArrayRecord({k: Array(v) for k, v in _record_arrays(arrays).items()})


class FedOptState(Stateless):
    """FedAdam, FedYogi, FedAdagrad: the first and second moments ``m_t`` and ``v_t``.

    ``current_arrays`` (where the server step starts) is re-set by Flower's ``configure_train``
    every round; it is kept too so that a checkpoint holds the whole picture.
    """

    current_arrays: Arrays | None
    m_t: Arrays | None
    v_t: Arrays | None

    _GROUPS = ("current_arrays", "m_t", "v_t")

    def capture_state(self) -> StrategyState:
        tensors = {}
        for group in self._GROUPS:
            value = getattr(self, group)
            if value:  # Flower treats an empty dict as "not initialised" too
                tensors[group] = _copied(value)
        return StrategyState(tensors)

    def restore_state(self, state: StrategyState) -> None:
        _check_groups(state, set(self._GROUPS), type(self).__name__)
        for group in self._GROUPS:
            setattr(self, group, _copied(state.tensors.get(group)))

    def rebase_state(self, arrays: ArrayRecord) -> None:
        self.current_arrays = _record_arrays(arrays)


def state_mixin(strategy_name: str) -> type[Stateless]:
    """The state class for a strategy name (SCAFFOLD implements the protocol itself)."""
    if strategy_name == "fedavgm":
        return FedAvgMState
    if strategy_name in ("fedadam", "fedyogi", "fedadagrad"):
        return FedOptState
    return Stateless
