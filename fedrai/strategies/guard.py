"""The server's guard between the clients' replies and the strategy's aggregate.

Every strategy of the registry is built with two mixins around Flower's ``aggregate_train``:

- :class:`StructureGuard` (outermost, before any differential-privacy clipping): drops error replies
  and rejects replies whose records, keys, shapes, dtypes, values or weight are wrong (a reply of
  the wrong shape would break clipping and every aggregator);
- :class:`ContentGuard` (innermost, right before the aggregator, after DP clipping): rejects updates
  whose norm fails the rule, then screens each remaining update for safety (``fedrai.screening``)
  and applies the policy (report, downweight, exclude).

So validation and screening see the update as it will be aggregated (clipped under server-side
DP); DP noise comes after the aggregate. The round aggregates what is left; with nothing left
it returns no aggregate and the global adapter stays as it was. :class:`UpdateGuard` keeps the
round's counts (``updates.*``) and per-client figures (``clients.<id>.*``) for the metrics row.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid

from fedrai.config.defences import ValidationConfig
from fedrai.strategies.attribution import Tensors, aggregate_alignment, snapshot
from fedrai.strategies.validation import WEIGHT_KEY, Rejection, UpdateValidator, client_id

log = logging.getLogger(__name__)

SCREEN_REASON = "screen"


@dataclass
class GuardReport:
    """What the guard did in one round."""

    received: int = 0
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    norm_ratios: dict[int, float] = field(default_factory=dict)
    screened: list[Any] = field(default_factory=list)  # screening.screen.ScreenResult
    weight_factors: dict[int, float] = field(default_factory=dict)
    screen_seconds: float = 0.0
    alignment: dict[int, tuple[float, float]] = field(default_factory=dict)  # (agg_cosine, agg_distance)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {
            "updates.received": float(self.received),
            "updates.accepted": float(self.accepted),
            "updates.rejected": float(len(self.rejected)),
        }
        for reason, n in sorted(Counter(r.reason for r in self.rejected).items()):
            out[f"updates.rejected.{reason}"] = float(n)
        for client, ratio in self.norm_ratios.items():
            out[f"clients.{client}.norm_ratio"] = ratio
        for r in self.rejected:
            out[f"clients.{r.client}.rejected"] = 1.0
        for s in self.screened:
            prefix = f"clients.{s.client}.screen"
            out[f"{prefix}.margin"] = s.scores.margin
            out[f"{prefix}.margin_change"] = s.margin_change
            out[f"{prefix}.margin_t"] = s.margin_t
            if math.isfinite(s.specificity):  # NaN unless the signal reads it: no figure, not a NaN
                out[f"{prefix}.specificity"] = s.specificity
            if math.isfinite(s.benign_loss_change):  # NaN without benign probes: no figure, not a NaN
                out[f"{prefix}.benign_loss_change"] = s.benign_loss_change
            out[f"{prefix}.flagged"] = float(s.flagged)
        for client, factor in self.weight_factors.items():
            out[f"clients.{client}.weight_factor"] = factor
        for client, (cosine, distance) in self.alignment.items():
            out[f"clients.{client}.agg_cosine"] = cosine
            out[f"clients.{client}.agg_distance"] = distance
        if self.screened:
            out["screen.seconds"] = self.screen_seconds
            out["screen.flagged"] = float(sum(s.flagged for s in self.screened))
        return out


class UpdateGuard:
    """Validation (always) and screening (when given) of one round's replies."""

    def __init__(self, validation: ValidationConfig | None = None, screen: Any = None) -> None:
        self.validator = UpdateValidator(validation or ValidationConfig())
        self.screen = screen  # screening.screen.UpdateScreen or None
        self.global_arrays: ArrayRecord | None = None
        self.server_round = 0
        self.report = GuardReport()

    def begin_round(self, server_round: int, arrays: ArrayRecord) -> None:
        self.server_round = server_round
        self.global_arrays = arrays
        self.report = GuardReport()

    def _reject(self, rejections: list[Rejection]) -> None:
        for r in rejections:
            log.warning(
                "round %d: update of client %d (node %d) rejected (%s): %s",
                self.server_round,
                r.client,
                r.node,
                r.reason,
                r.detail,
            )
        self.report.rejected.extend(rejections)

    def check_structure(self, replies: list[Message], records: set[str]) -> list[Message]:
        if self.global_arrays is None:
            raise RuntimeError("UpdateGuard.check_structure called before begin_round")
        self.report.received = sum(not m.has_error() for m in replies)
        out = self.validator.check_structure(self.global_arrays, replies, records)
        self._reject(out.rejected)
        self.report.accepted = len(out.kept)
        return out.kept

    def check_content(
        self,
        replies: list[Message],
        arrays_key: str,
        delta_keys: tuple[str, ...],
        weight_key: str = WEIGHT_KEY,
    ) -> list[Message]:
        if self.global_arrays is None:
            raise RuntimeError("UpdateGuard.check_content called before begin_round")
        out, ratios = self.validator.check_norms(self.global_arrays, replies, arrays_key, delta_keys)
        self.report.norm_ratios.update(ratios)
        self._reject(out.rejected)
        kept = out.kept
        if self.screen is not None and kept:
            kept = self._screen(kept, arrays_key, weight_key)
        self.report.accepted = len(kept)
        return kept

    def _screen(self, replies: list[Message], arrays_key: str, weight_key: str) -> list[Message]:
        assert self.global_arrays is not None
        results = self.screen.screen(
            self.global_arrays, [(client_id(m), m.content[arrays_key]) for m in replies]
        )
        self.report.screened = results
        self.report.screen_seconds = self.screen.seconds
        policy = self.screen.cfg.policy
        kept: list[Message] = []
        for msg, res in zip(replies, results, strict=True):
            if not res.flagged or policy == "report":
                kept.append(msg)
            elif policy == "downweight":
                factor = self.screen.cfg.downweight_factor
                for record in msg.content.metric_records.values():
                    if weight_key in record:
                        record[weight_key] = float(record[weight_key]) * factor
                self.report.weight_factors[res.client] = factor
                kept.append(msg)
            else:
                self._reject(
                    [
                        Rejection(
                            res.client,
                            int(msg.metadata.src_node_id),
                            SCREEN_REASON,
                            f"refusal margin changed by {res.margin_change:+.3f} nats/token "
                            f"(paired t {res.margin_t:+.2f})"
                            + (
                                f", specificity {res.specificity:+.2f}"
                                if math.isfinite(res.specificity)
                                else ""
                            )
                            + (
                                f", benign loss by {res.benign_loss_change:+.3f}"
                                if math.isfinite(res.benign_loss_change)
                                else ""
                            ),
                        )
                    ]
                )
        return kept

    def attribute(self, updates: dict[int, Tensors], aggregate: ArrayRecord) -> None:
        """Record how closely the aggregate follows each aggregated update (``strategies.attribution``)."""
        if self.global_arrays is None:
            raise RuntimeError("UpdateGuard.attribute called before begin_round")
        self.report.alignment = aggregate_alignment(self.global_arrays, updates, aggregate)

    def metrics(self) -> dict[str, float]:
        return self.report.metrics()


def reply_records(strategy: Any) -> set[str]:
    """The ArrayRecords each reply must hold: the adapter, and SCAFFOLD's control delta."""
    records = {strategy.arrayrecord_key}
    delta = getattr(strategy, "control_delta_key", None)
    if delta:
        records.add(delta)
    return records


class StructureGuard:
    """Outermost guard: the structural checks, before any clipping can trip over a malformed reply."""

    update_guard: UpdateGuard

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.update_guard.begin_round(server_round, arrays)
        return super().configure_train(server_round, arrays, config, grid)  # type: ignore[misc]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        kept = self.update_guard.check_structure(list(replies), reply_records(self))
        if not kept:
            return None, None
        return super().aggregate_train(server_round, kept)  # type: ignore[misc]


class ContentGuard:
    """Innermost guard: norm rule and safety screening on the updates the aggregator will see."""

    update_guard: UpdateGuard

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        delta = getattr(self, "control_delta_key", None)
        kept = self.update_guard.check_content(
            list(replies),
            self.arrayrecord_key,  # type: ignore[attr-defined]
            (delta,) if delta else (),
            getattr(self, "weighted_by_key", WEIGHT_KEY),
        )
        if not kept:
            return None, None
        key = self.arrayrecord_key  # type: ignore[attr-defined]
        updates = {client_id(m): snapshot(m.content[key]) for m in kept}
        arrays, metrics = super().aggregate_train(server_round, kept)  # type: ignore[misc]
        if arrays is not None:
            self.update_guard.attribute(updates, arrays)
        return arrays, metrics
