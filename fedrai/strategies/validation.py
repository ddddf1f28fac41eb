"""Validation of client replies before aggregation: structure, finiteness, weight and update norm.

A reply from an untrusted site can hold anything: another adapter's keys, a wrong shape or dtype,
NaN or Inf, a claimed example count of a billion, or an update a hundred times the size of the
others. Flower's strategies either crash on such a reply (inconsistent keys) or average it in.
:class:`UpdateValidator` sorts the replies of one round into kept and rejected, with one reason
per rejection; the round then aggregates what is kept. Every ArrayRecord of a reply is checked
against the global adapter, so SCAFFOLD's control deltas (same keys and shapes) are checked too.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, Message

from fedrai.config.defences import ValidationConfig

PARTITION_METRIC = "client.partition"  # a simulated client's partition id (a number, never text)
WEIGHT_KEY = "num-examples"
MAD_SCALE = 1.4826  # MAD of a normal distribution times this is its standard deviation


def client_id(msg: Message) -> int:
    """The partition id a simulated client reports, else the sender's node id (a deployed site)."""
    for record in msg.content.metric_records.values():
        value = record.get(PARTITION_METRIC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return int(msg.metadata.src_node_id)


@dataclass
class Rejection:
    """One reply left out of aggregation, and why (no client data, only what was wrong)."""

    client: int
    node: int
    reason: str  # records | keys | shape | dtype | nonfinite | weight | metrics | norm | screen
    detail: str


@dataclass
class Sorted:
    """The replies of a round after one check."""

    kept: list[Message] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def _reject(msg: Message, reason: str, detail: str) -> Rejection:
    return Rejection(client_id(msg), int(msg.metadata.src_node_id), reason, detail)


class UpdateValidator:
    """Structure and norm checks of one round's replies against the global adapter it started from."""

    def __init__(self, cfg: ValidationConfig) -> None:
        self.cfg = cfg

    def check_structure(
        self, global_arrays: ArrayRecord, replies: list[Message], records: set[str]
    ) -> Sorted:
        """Keep replies whose ArrayRecords are exactly ``records``, each with the global adapter's keys,
        shapes and dtypes, all finite, and with a positive finite weight. Error replies are dropped
        (the round already counts them as failures)."""
        out = Sorted()
        spec = {k: (tuple(a.shape), str(a.dtype)) for k, a in global_arrays.items()}
        for msg in replies:
            if msg.has_error():
                continue
            problem = self._structure_problem(msg, spec, records) if self.cfg.enabled else None
            if problem is None:
                out.kept.append(msg)
            else:
                out.rejected.append(_reject(msg, *problem))
        if self.cfg.enabled:
            out = _majority_metric_keys(out)
        return out

    def _structure_problem(
        self, msg: Message, spec: dict[str, tuple[tuple[int, ...], str]], records: set[str]
    ) -> tuple[str, str] | None:
        got = set(msg.content.array_records)
        if got != records:
            return "records", f"ArrayRecords {sorted(got)}, expected {sorted(records)}"
        for name in sorted(records):
            record = msg.content.array_records[name]
            if list(record.keys()) != list(spec):
                missing = sorted(set(spec) - set(record.keys()))[:3]
                extra = sorted(set(record.keys()) - set(spec))[:3]
                return "keys", f"{name}: keys differ (missing {missing}, unexpected {extra}, or reordered)"
            for key, array in record.items():
                shape, dtype = spec[key]
                if tuple(array.shape) != shape:
                    return "shape", f"{name}[{key}]: shape {tuple(array.shape)}, expected {shape}"
                if str(array.dtype) != dtype:
                    return "dtype", f"{name}[{key}]: dtype {array.dtype}, expected {dtype}"
            for key, array in record.items():
                values = array.numpy()
                if not np.isfinite(values).all():
                    return "nonfinite", f"{name}[{key}]: {int((~np.isfinite(values)).sum())} NaN/Inf values"
        weights = [r.get(WEIGHT_KEY) for r in msg.content.metric_records.values() if WEIGHT_KEY in r]
        if len(weights) != 1:
            return "weight", f"expected one {WEIGHT_KEY!r} metric, found {len(weights)}"
        w = weights[0]
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
            return "weight", f"{WEIGHT_KEY} = {w!r} is not a positive finite number"
        return None

    def norm_ratios(self, global_arrays: ArrayRecord, replies: list[Message], record: str) -> list[float]:
        """|y - x| / |x| per reply for ArrayRecord ``record`` (|y| / 1 where the global is zero)."""
        x = {k: a.numpy().astype(np.float64) for k, a in global_arrays.items()}
        x_norm = math.sqrt(sum(float((v**2).sum()) for v in x.values())) or 1.0
        ratios = []
        for msg in replies:
            y = msg.content.array_records[record]
            sq = sum(float(((a.numpy().astype(np.float64) - x[k]) ** 2).sum()) for k, a in y.items())
            ratios.append(math.sqrt(sq) / x_norm)
        return ratios

    @staticmethod
    def delta_norms(replies: list[Message], record: str) -> list[float]:
        """|d| per reply for a record that is itself a delta (SCAFFOLD's ``dc``)."""
        return [
            math.sqrt(
                sum(float((a.numpy().astype(np.float64) ** 2).sum()) for a in m.content[record].values())
            )
            for m in replies
        ]

    def check_norms(
        self,
        global_arrays: ArrayRecord,
        replies: list[Message],
        arrays_key: str,
        delta_keys: tuple[str, ...] = (),
    ) -> tuple[Sorted, dict[int, float]]:
        """Apply ``norm_rule`` to the adapter update (bound and MAD) and to delta records (MAD only)."""
        ratios = self.norm_ratios(global_arrays, replies, arrays_key) if replies else []
        by_client = {client_id(m): r for m, r in zip(replies, ratios, strict=True)}
        out = Sorted()
        if not self.cfg.enabled or self.cfg.norm_rule == "none":
            out.kept = list(replies)
            return out, by_client
        outlier = [r > self.cfg.max_norm_ratio for r in ratios]
        why = [
            f"update norm ratio {r:.3g} > {self.cfg.max_norm_ratio:g}" if o else ""
            for r, o in zip(ratios, outlier, strict=True)
        ]
        if self.cfg.norm_rule == "mad" and len(replies) >= self.cfg.mad_min_replies:
            for name, values in [(arrays_key, ratios)] + [
                (k, self.delta_norms(replies, k)) for k in delta_keys
            ]:
                for i, z in enumerate(robust_z(values)):
                    if z > self.cfg.mad_threshold and not outlier[i]:
                        outlier[i] = True
                        why[i] = f"{name} norm robust z {z:.3g} > {self.cfg.mad_threshold:g}"
        for msg, bad, detail in zip(replies, outlier, why, strict=True):
            if bad:
                out.rejected.append(_reject(msg, "norm", detail))
            else:
                out.kept.append(msg)
        return out, by_client


def _metric_keys(msg: Message) -> frozenset[str]:
    return frozenset(k for r in msg.content.metric_records.values() for k in r)


def _majority_metric_keys(sorted_: Sorted) -> Sorted:
    """Flower's aggregators refuse a round whose replies differ in metric keys (the whole round
    fails); keep the replies with the most common key set and reject the others (``metrics``)."""
    keys = [_metric_keys(m) for m in sorted_.kept]
    if len(set(keys)) <= 1:
        return sorted_
    majority = Counter(keys).most_common(1)[0][0]
    out = Sorted(rejected=list(sorted_.rejected))
    for msg, k in zip(sorted_.kept, keys, strict=True):
        if k == majority:
            out.kept.append(msg)
        else:
            diff = sorted(k ^ majority)[:3]
            out.rejected.append(
                _reject(msg, "metrics", f"metric keys differ from the round's majority: {diff}")
            )
    return out


def robust_z(values: list[float]) -> list[float]:
    """(v - median) / (1.4826 MAD), one-sided use: only large values are outliers.

    The MAD is floored at 1% of the median so that a round of near-identical norms does not call
    a tiny difference an outlier.
    """
    arr = np.asarray(values, dtype=np.float64)
    med = float(np.median(arr))
    mad = float(np.median(np.abs(arr - med)))
    scale = MAD_SCALE * max(mad, 0.01 * abs(med), 1e-12)
    return [float((v - med) / scale) for v in arr]
