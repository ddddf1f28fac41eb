"""SCAFFOLD (Karimireddy et al. 2020) over the LoRA adapter: server strategy and client step.

Flower 1.42 has no SCAFFOLD. The server keeps the control variate ``c``; each client keeps its
own ``c_i`` in its persistent state dir. A round (option II of the paper's Algorithm 1):

- server -> client: the global adapter ``x`` ("arrays") and ``c`` ("scaffold.c");
- client: K local steps on the gradient corrected by ``c - c_i``, ending at ``y_i``; then
  ``c_i+ = c_i - c + (x - y_i) / (K * lr)``, stored locally;
- client -> server: ``y_i`` ("arrays") and ``dc_i = c_i+ - c_i`` ("scaffold.dc");
- server: ``x <- x + eta_g * weighted_mean(y_i - x)``, ``c <- c + (|S| / N) * mean(dc_i)``.

The control variates double the traffic both ways; ``RoundRecorder`` counts every ArrayRecord.

Optimizer: ``train_lora`` applies the correction as ``w -= lr * (c - c_i)`` after each optimizer
step. With ``train.optimizer = "sgd"`` and no clipping that is exactly the paper's corrected step.
With AdamW (the default, and what OpenFedLLM, on which Noh and Baek built, does) the correction is
kept out of Adam's per-coordinate normalisation, but ``(x - y) / (K * lr)`` then estimates Adam's
normalised step rather than the gradient, so the drift correction is a heuristic; clients log
that once. Gradient clipping (``train.max_grad_norm``) biases the estimate the same way.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from logging import INFO
from pathlib import Path

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.exception import InconsistentMessageReplies
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords, validate_message_reply_consistency
from flwr.supercore import log as flwr_log
from safetensors.torch import load_file, save_file

from fedrai.strategies.state import StateError, StrategyState
from fedrai.transport import from_arrays

log = logging.getLogger(__name__)

CONTROL_KEY = "scaffold.c"
CONTROL_DELTA_KEY = "scaffold.dc"
REJECTED_KEY = "scaffold.rejected"  # config: rounds the server's gate refused (clients drop their c_i)

Tensors = dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class Scaffold(FedAvg):
    """SCAFFOLD: stochastic controlled averaging (option II control variates).

    Implementation based on https://arxiv.org/abs/1910.06378

    Parameters
    ----------
    fraction_train : float (default: 1.0)
        Fraction of nodes used during training.
    fraction_evaluate : float (default: 1.0)
        Fraction of nodes used during validation.
    min_train_nodes : int (default: 2)
        Minimum number of nodes used during training.
    min_evaluate_nodes : int (default: 2)
        Minimum number of nodes used during validation.
    min_available_nodes : int (default: 2)
        Minimum number of total nodes in the system.
    server_learning_rate : float (default: 1.0)
        Global step size ``eta_g``: ``x <- x + eta_g * weighted_mean(y_i - x)``. With 1.0 the
        adapter update equals FedAvg's; the control variates change what clients train.
    weighted_by_key : str (default: "num-examples")
        Key of the MetricRecord value that weights the adapter average.
    arrayrecord_key : str (default: "arrays")
        Key of the adapter ArrayRecord, both ways.
    configrecord_key : str (default: "config")
        Key of the ConfigRecord sent to clients.
    control_key : str (default: "scaffold.c")
        Key of the server control variate ArrayRecord sent to clients.
    control_delta_key : str (default: "scaffold.dc")
        Key of the client control variate delta ArrayRecord in replies.
    train_metrics_aggr_fn : Optional[callable] (default: None)
        As in FedAvg.
    evaluate_metrics_aggr_fn : Optional[callable] (default: None)
        As in FedAvg.

    Notes
    -----
    The cross-round state (``capture_state`` / ``restore_state``) is ``server_control`` (name ->
    float32 array, zero until the first round sees the adapter's shapes), ``total_nodes`` and the
    rounds the acceptance gate refused. A refused round is undone on both sides, so that
    ``c = mean(c_i)`` still holds: the server restores ``c`` from before the round, and every
    later training message lists the refused rounds (``scaffold.rejected``), so a client that
    trained in one starts from the ``c_i`` it had before it (``ClientControlStore`` keeps it) and
    deletes the refused version. Control variates are gradient estimates, not positions, so a
    change of the adapter by server-side CAI needs no re-base. ``N`` in the control update is the
    number of connected nodes seen by ``configure_train``. A client whose reply is lost after it
    stored its new ``c_i`` leaves ``c`` and the clients' ``c_i`` slightly out of step, as in the
    paper's setting with dropped clients.
    """

    # pylint: disable=too-many-arguments,too-many-positional-arguments
    def __init__(
        self,
        fraction_train: float = 1.0,
        fraction_evaluate: float = 1.0,
        min_train_nodes: int = 2,
        min_evaluate_nodes: int = 2,
        min_available_nodes: int = 2,
        server_learning_rate: float = 1.0,
        weighted_by_key: str = "num-examples",
        arrayrecord_key: str = "arrays",
        configrecord_key: str = "config",
        control_key: str = CONTROL_KEY,
        control_delta_key: str = CONTROL_DELTA_KEY,
        train_metrics_aggr_fn: Callable[[list[RecordDict], str], MetricRecord] | None = None,
        evaluate_metrics_aggr_fn: Callable[[list[RecordDict], str], MetricRecord] | None = None,
    ) -> None:
        super().__init__(
            fraction_train=fraction_train,
            fraction_evaluate=fraction_evaluate,
            min_train_nodes=min_train_nodes,
            min_evaluate_nodes=min_evaluate_nodes,
            min_available_nodes=min_available_nodes,
            weighted_by_key=weighted_by_key,
            arrayrecord_key=arrayrecord_key,
            configrecord_key=configrecord_key,
            train_metrics_aggr_fn=train_metrics_aggr_fn,
            evaluate_metrics_aggr_fn=evaluate_metrics_aggr_fn,
        )
        if server_learning_rate <= 0:
            raise ValueError(f"server_learning_rate must be > 0, got {server_learning_rate}")
        self.server_learning_rate = server_learning_rate
        self.control_key = control_key
        self.control_delta_key = control_delta_key
        self.server_control: dict[str, np.ndarray] = {}
        self.total_nodes = 0
        self.rejected_rounds: list[int] = []
        self._global: dict[str, np.ndarray] = {}  # x of the round in flight (set by configure_train)

    def summary(self) -> None:
        """Log summary configuration of the strategy."""
        flwr_log(INFO, "\t├──> SCAFFOLD settings:")
        flwr_log(INFO, "\t│\t├── Server learning rate: %s", self.server_learning_rate)
        flwr_log(INFO, "\t│\t└── Control keys: '%s' down, '%s' up", self.control_key, self.control_delta_key)
        super().summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send the global adapter and the server control variate to the sampled nodes."""
        config["strategy"] = "scaffold"  # the ClientApp's cue to run the corrected local step
        config[REJECTED_KEY] = list(self.rejected_rounds)
        messages = list(super().configure_train(server_round, arrays, config, grid))
        if not messages:
            return messages
        self.total_nodes = len(list(grid.get_node_ids()))
        self._global = {k: v.numpy() for k, v in arrays.items()}
        self._ensure_control()
        control = ArrayRecord(
            {k: Array(self.server_control[k].astype(x.dtype, copy=False)) for k, x in self._global.items()}
        )
        for message in messages:
            message.content[self.control_key] = control
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average the adapters (server step size) and fold the control deltas into ``c``."""
        # Flower's validation wants exactly one ArrayRecord a reply; ours carry two, so the
        # control deltas are checked here and the adapters are validated and averaged by
        # Flower's own helpers on replies stripped of them.
        valid, _ = self._check_and_log_replies(replies, is_train=True, validate=False)
        if not valid:
            return None, None
        if not self._global:
            raise RuntimeError("Scaffold.aggregate_train called before configure_train")
        contents = [msg.content for msg in valid]
        expected = {self.arrayrecord_key, self.control_delta_key}
        for content in contents:
            if set(content.array_records) != expected:
                raise InconsistentMessageReplies(
                    reason=f"SCAFFOLD expects ArrayRecords {sorted(expected)} in each reply, "
                    f"got {sorted(content.array_records)}. Skipping aggregation."
                )
            for key in expected:
                if list(content[key].keys()) != list(self._global):
                    raise InconsistentMessageReplies(
                        reason=f"ArrayRecord '{key}' does not hold the global adapter's keys. Skipping aggregation."
                    )
        adapters = [
            RecordDict({self.arrayrecord_key: c[self.arrayrecord_key], **c.metric_records}) for c in contents
        ]
        validate_message_reply_consistency(adapters, self.weighted_by_key, check_arrayrecord=True)

        mean_y = aggregate_arrayrecords(adapters, self.weighted_by_key)
        new_x: dict[str, Array] = {}
        for k, x in self._global.items():
            step = mean_y[k].numpy().astype(np.float64) - x
            new_x[k] = Array(np.asarray(x + self.server_learning_rate * step, dtype=x.dtype))

        share = 1.0 / max(self.total_nodes, len(contents))  # (|S|/N) * mean = sum / N
        for k in self._global:
            total = sum(c[self.control_delta_key][k].numpy().astype(np.float64) for c in contents)
            self.server_control[k] = (self.server_control[k] + share * total).astype(np.float32)

        metrics = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        return ArrayRecord(new_x), metrics

    def capture_state(self) -> StrategyState:
        """``c``, ``N`` and the refused rounds (a deep copy: ``c`` is updated in place)."""
        tensors = {"server_control": dict(self.server_control)} if self.server_control else {}
        return StrategyState(
            tensors, {"total_nodes": self.total_nodes, "rejected_rounds": list(self.rejected_rounds)}
        ).copy()

    def restore_state(self, state: StrategyState) -> None:
        unknown = set(state.tensors) - {"server_control"}
        if unknown:
            raise StateError(f"SCAFFOLD state holds unknown array groups {sorted(unknown)}")
        total = state.scalars.get("total_nodes", 0)
        rejected = state.scalars.get("rejected_rounds", [])
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise StateError(f"SCAFFOLD state: total_nodes must be a count, got {total!r}")
        if not isinstance(rejected, list) or not all(type(r) is int and r > 0 for r in rejected):
            raise StateError(f"SCAFFOLD state: rejected_rounds must be a list of rounds, got {rejected!r}")
        control = state.tensors.get("server_control", {})
        self.server_control = {k: np.array(v, dtype=np.float32, copy=True) for k, v in control.items()}
        self.total_nodes = total
        self.rejected_rounds = list(rejected)

    def rebase_state(self, arrays: ArrayRecord) -> None:
        """Control variates estimate gradients, not positions: a moved adapter keeps them."""

    def note_rejected(self, server_round: int) -> None:
        """Tell the clients, from the next round on, to forget their ``c_i`` of ``server_round``."""
        if server_round not in self.rejected_rounds:
            self.rejected_rounds.append(server_round)

    def _ensure_control(self) -> None:
        if not self.server_control:
            self.server_control = {k: np.zeros(x.shape, dtype=np.float32) for k, x in self._global.items()}
            return
        for k, x in self._global.items():
            if k not in self.server_control or self.server_control[k].shape != x.shape:
                raise ValueError(f"server control variate does not match the adapter at {k!r}")


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


def gradient_correction(server_control: Tensors, client_control: Tensors) -> Tensors:
    """``c - c_i``: what SCAFFOLD adds to every local gradient."""
    return {k: server_control[k] - client_control[k] for k in server_control}


def control_update(
    client_control: Tensors,
    server_control: Tensors,
    global_state: Tensors,
    local_state: Tensors,
    *,
    steps: int,
    lr: float,
) -> Tensors:
    """Option II: ``c_i+ = c_i - c + (x - y) / (K * lr)``, K optimizer steps (not micro-batches)."""
    if steps < 1 or lr <= 0:
        raise ValueError(f"SCAFFOLD needs steps >= 1 and lr > 0, got steps={steps}, lr={lr}")
    scale = 1.0 / (steps * lr)
    return {
        k: client_control[k] - server_control[k] + (global_state[k].float() - local_state[k].float()) * scale
        for k in server_control
    }


class ClientControlStore:
    """A client's ``c_i`` on disk, one safetensors file per round that produced it.

    Kept in the client's persistent state dir, so it survives rounds, a resumed run and a fresh
    process per message. Keeping the last two versions makes a round idempotent: if the server
    dies after clients trained round r and resends round r on resume, each client starts again
    from the ``c_i`` it had before round r instead of applying round r twice. The same versions
    undo a round the server's gate refused: ``skip`` ignores it on load, and ``save`` deletes it.
    """

    _NAME = re.compile(r"control-r(\d+)\.safetensors")

    def __init__(self, state_dir: Path, keep: int = 2) -> None:
        self.dir = Path(state_dir) / "scaffold"
        self.keep = keep

    def rounds(self) -> list[int]:
        """Rounds whose ``c_i`` is stored, ascending."""
        if not self.dir.is_dir():
            return []
        found = (self._NAME.fullmatch(p.name) for p in self.dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def path(self, server_round: int) -> Path:
        return self.dir / f"control-r{server_round:06d}.safetensors"

    def load_before(self, server_round: int, like: Tensors, skip: Iterable[int] = ()) -> Tensors:
        """The newest ``c_i`` stored by a round before ``server_round`` and not in ``skip``; zeros if none."""
        skipped = set(skip)
        earlier = [r for r in self.rounds() if r < server_round and r not in skipped]
        if not earlier:
            return {k: torch.zeros_like(v, dtype=torch.float32) for k, v in like.items()}
        stored = load_file(str(self.path(earlier[-1])))
        if set(stored) != set(like):
            raise ValueError(f"{self.path(earlier[-1])} does not hold this adapter's keys")
        return {k: stored[k] for k in like}

    def save(self, server_round: int, control: Tensors, drop: Iterable[int] = ()) -> Path:
        """Write atomically, delete the versions of ``drop`` (refused rounds), keep the newest ``keep``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self.path(server_round)
        tmp = target.with_suffix(".tmp")
        save_file({k: v.detach().float().contiguous().cpu() for k, v in control.items()}, str(tmp))
        os.replace(tmp, target)
        for old in set(drop) & set(self.rounds()) - {server_round}:
            self.path(old).unlink(missing_ok=True)
        for old in self.rounds()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)
        return target


_warned_optimizers: set[str] = set()


class ScaffoldClient:
    """One client's SCAFFOLD round: the gradient correction before training, ``dc_i`` after.

    Use as ``sc = ScaffoldClient.begin(msg.content, state_dir, server_round)``, train with
    ``grad_correction=sc.correction``, then send ``sc.finish(adapter_after, steps=K, lr=lr)``.
    """

    def __init__(
        self,
        store: ClientControlStore,
        server_round: int,
        global_state: Tensors,
        server_control: Tensors,
        rejected_rounds: Iterable[int] = (),
    ):
        self.store = store
        self.server_round = server_round
        self.global_state = global_state
        self.server_control = server_control
        self.rejected_rounds = tuple(rejected_rounds)
        self.client_control = store.load_before(server_round, like=server_control, skip=self.rejected_rounds)
        self.correction = gradient_correction(server_control, self.client_control)

    @classmethod
    def begin(
        cls,
        content: RecordDict,
        state_dir: Path,
        server_round: int,
        *,
        optimizer: str = "sgd",
        arrayrecord_key: str = "arrays",
        configrecord_key: str = "config",
        control_key: str = CONTROL_KEY,
    ) -> ScaffoldClient:
        """Read ``x``, ``c`` and the refused rounds from the server's message, ``c_i`` from local state."""
        if control_key not in content.array_records:
            raise ValueError(f"SCAFFOLD round without the server control variate {control_key!r}")
        if optimizer != "sgd" and optimizer not in _warned_optimizers:
            _warned_optimizers.add(optimizer)
            log.warning(
                "SCAFFOLD with train.optimizer=%r: control variates estimate the optimizer's normalised "
                "step, not the gradient (OpenFedLLM's variant); train.optimizer='sgd' follows the paper exactly",
                optimizer,
            )
        config = content.config_records.get(configrecord_key)
        rejected = config.get(REJECTED_KEY, []) if config is not None else []
        return cls(
            ClientControlStore(state_dir),
            server_round,
            global_state=dict(from_arrays(content[arrayrecord_key])),
            server_control=dict(from_arrays(content[control_key])),
            rejected_rounds=[int(r) for r in rejected],
        )

    def finish(self, local_state: Mapping[str, torch.Tensor], *, steps: int, lr: float) -> Tensors:
        """Store ``c_i+`` and return ``dc_i = c_i+ - c_i`` to send to the server."""
        new = control_update(
            self.client_control, self.server_control, self.global_state, dict(local_state), steps=steps, lr=lr
        )
        self.store.save(self.server_round, new, drop=self.rejected_rounds)
        return {k: new[k] - self.client_control[k] for k in new}
