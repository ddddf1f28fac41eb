"""Build a strategy by name from ``StrategyConfig``, instrumented for the round driver."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp import strategy as flwr_strategy

from fedrai.clients.placement import (
    CLIENT_GUARD_SECONDS,
    CLIENT_TRAIN_SECONDS,
    PEAK_RSS_KEY,
    PLACEMENT_RECORD,
)
from fedrai.config import StrategyConfig
from fedrai.config.defences import PrivacyConfig, ValidationConfig
from fedrai.strategies.guard import ContentGuard, StructureGuard, UpdateGuard
from fedrai.strategies.state import state_mixin


def _no_extra(c: StrategyConfig) -> dict[str, Any]:
    return {}


_BUILDERS: dict[str, tuple[Callable[[], type], Callable[[StrategyConfig], dict[str, Any]]]] = {
    "fedavg": (lambda: flwr_strategy.FedAvg, _no_extra),
    "fedprox": (lambda: flwr_strategy.FedProx, lambda c: {"proximal_mu": c.proximal_mu}),
    "fedavgm": (
        lambda: flwr_strategy.FedAvgM,
        lambda c: {"server_learning_rate": c.server_learning_rate, "server_momentum": c.server_momentum},
    ),
    "fedadam": (
        lambda: flwr_strategy.FedAdam,
        lambda c: {"eta": c.fedopt_eta, "beta_1": c.beta_1, "beta_2": c.beta_2, "tau": c.tau},
    ),
    "fedyogi": (
        lambda: flwr_strategy.FedYogi,
        lambda c: {"eta": c.fedopt_eta, "beta_1": c.beta_1, "beta_2": c.beta_2, "tau": c.tau},
    ),
    "fedadagrad": (lambda: flwr_strategy.FedAdagrad, lambda c: {"eta": c.fedopt_eta, "tau": c.tau}),
    "fedmedian": (lambda: flwr_strategy.FedMedian, _no_extra),
    "fedtrimmedavg": (lambda: flwr_strategy.FedTrimmedAvg, lambda c: {"beta": c.trim_beta}),
    "krum": (lambda: flwr_strategy.Krum, lambda c: {"num_malicious_nodes": c.num_malicious_clients}),
    "multikrum": (
        lambda: flwr_strategy.MultiKrum,
        lambda c: {"num_malicious_nodes": c.num_malicious_clients, "num_nodes_to_select": c.krum_select},
    ),
    "bulyan": (lambda: flwr_strategy.Bulyan, lambda c: {"num_malicious_nodes": c.num_malicious_clients}),
}


def _scaffold() -> type:
    from fedrai.strategies.scaffold import Scaffold

    return Scaffold


_BUILDERS["scaffold"] = (_scaffold, lambda c: {"server_learning_rate": c.server_learning_rate})

STRATEGY_NAMES: tuple[str, ...] = tuple(_BUILDERS)

COUNT_PREFIXES = ("safety.", "cai.", "data.")


@dataclass
class RoundTraffic:
    """What one training round sent, received and lost."""

    sampled: int = 0
    bytes_down: int = 0
    failures: int = 0
    bytes_up: int = 0
    client_metrics: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # One row per replying client: its placement record (Ray node, host) beside its own metrics.
    clients: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Per-round figures: weighted train loss, summed guard counts, traffic."""
        out: dict[str, float] = {
            "clients": float(self.sampled - self.failures),
            "failures": float(self.failures),
            "bytes_up": float(self.bytes_up),
            "bytes_down": float(self.bytes_down),
        }
        ok = self.client_metrics
        weights = [m.get("num-examples", 0.0) for m in ok]
        total = sum(weights)
        if ok and total > 0:
            for key in ("train.loss_mean", "train.loss_first", "train.loss_last"):
                if all(key in m for m in ok):
                    out[key] = sum(m[key] * w for m, w in zip(ok, weights, strict=True)) / total
            out["train_loss"] = out.get("train.loss_mean", float("nan"))
        for m in ok:
            for key, value in m.items():
                if key.startswith(COUNT_PREFIXES):
                    out[key] = out.get(key, 0.0) + value
        for key in (CLIENT_GUARD_SECONDS, CLIENT_TRAIN_SECONDS):  # the slowest client's: the round waits
            seconds = [m[key] for m in ok if key in m]
            if seconds:
                out[key] = max(seconds)
        peaks = [m[PEAK_RSS_KEY] for m in ok if PEAK_RSS_KEY in m]
        if peaks:  # the largest client process this round (a Ray actor's peak RSS)
            out[PEAK_RSS_KEY] = max(peaks)
        nodes = {c["node"] for c in self.clients if c.get("node")}
        if nodes:
            out["client.nodes"] = float(len(nodes))
        return out


class RoundRecorder:
    """Mixin over a Flower strategy: records each round's traffic and failures.

    Missing replies (a timed-out client) count as failures like error replies do; a failed
    client never aborts the round, as long as one reply is usable. Before each round the
    strategy's state is re-based onto the adapter sent (see ``strategies.state``).
    """

    traffic: RoundTraffic

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.rebase_state(arrays)  # type: ignore[attr-defined]
        messages = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        self.traffic = RoundTraffic(
            sampled=len(messages),
            bytes_down=sum(_arrays_bytes(m) for m in messages),
        )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        t = self.traffic
        for msg in replies:
            if msg.has_error():
                t.errors.append(f"node {msg.metadata.src_node_id}: {msg.error.reason}")
                continue
            t.bytes_up += _arrays_bytes(msg)
            for record in msg.content.metric_records.values():
                t.client_metrics.append(
                    {k: float(v) for k, v in record.items() if isinstance(v, int | float)}
                )
            where = msg.content.config_records.get(PLACEMENT_RECORD)
            t.clients.append(
                {
                    "node_id": msg.metadata.src_node_id,
                    **({k: v for k, v in where.items() if isinstance(v, str | int | float)} if where else {}),
                    **(t.client_metrics[-1] if msg.content.metric_records else {}),
                }
            )
        t.failures = t.sampled - (len(replies) - len(t.errors))
        return super().aggregate_train(server_round, replies)  # type: ignore[misc]

    def round_report(self) -> dict[str, float]:
        """The round's figures for its metrics row: traffic, the guard's counts, DP settings."""
        out = self.traffic.summary()
        out.update(self.update_guard.metrics())  # type: ignore[attr-defined]
        privacy = getattr(self, "privacy_metrics", None)
        if privacy is not None:
            out.update(privacy())
        return out


def _arrays_bytes(message: Message) -> int:
    return sum(r.count_bytes() for r in message.content.array_records.values())


def build_strategy(
    cfg: StrategyConfig,
    num_clients: int,
    *,
    validation: ValidationConfig | None = None,
    screen: Any = None,
    privacy: PrivacyConfig | None = None,
) -> Any:
    """A Flower strategy by name; no client-side evaluation (the server evaluates).

    It records its traffic (``RoundRecorder``), validates and optionally safety-screens every reply
    before aggregation (``strategies.guard``; ``screen`` is a ``screening.screen.UpdateScreen``),
    may sit inside one of Flower's DP wrappers (``strategies.privacy``), and has explicit
    cross-round state (``capture_state`` / ``restore_state`` / ``rebase_state`` / ``note_rejected``):
    from its family's mixin in ``strategies.state``, or its own (SCAFFOLD).
    """
    if cfg.name not in _BUILDERS:
        raise ValueError(f"unknown strategy {cfg.name!r}; valid: {', '.join(STRATEGY_NAMES)}")
    get_cls, extra = _BUILDERS[cfg.name]
    base = get_cls()
    state = () if hasattr(base, "capture_state") else (state_mixin(cfg.name),)
    guard = UpdateGuard(validation, screen)
    min_train = min(cfg.min_train_clients, num_clients)
    kwargs = {
        "fraction_train": cfg.fraction_train,
        "fraction_evaluate": 0.0,
        "min_train_nodes": min_train,
        "min_evaluate_nodes": 0,
        "min_available_nodes": max(min_train, min(cfg.min_available_clients, num_clients)),
        **extra(cfg),
    }
    if privacy is None or privacy.clipping == "none":
        cls = type(
            f"Recorded{base.__name__}", (RoundRecorder, StructureGuard, ContentGuard, *state, base), {}
        )
        strategy = cls(**kwargs)
        strategy.update_guard = guard
        return strategy
    from fedrai.strategies.privacy import DelegatingWrapper, wrapper_class, wrapper_kwargs

    inner = type(f"Guarded{base.__name__}", (ContentGuard, *state, base), {})(**kwargs)
    inner.update_guard = guard
    dp = wrapper_class(privacy)
    outer_cls = type(f"Recorded{dp.__name__}", (RoundRecorder, StructureGuard, DelegatingWrapper, dp), {})
    # Flower samples max(int(N * fraction), min_train_nodes) clients: the noise is calibrated to it.
    sampled = max(int(num_clients * cfg.fraction_train), min_train)
    outer = outer_cls(inner, **wrapper_kwargs(privacy, sampled))
    outer.update_guard = guard
    return outer
