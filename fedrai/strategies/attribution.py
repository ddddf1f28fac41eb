"""Which updates the aggregate followed: each kept update's cosine with, and distance to, the aggregate.

Robust aggregators do not say what they did with each reply: Krum picks one update, the median
and the trimmed mean mix coordinates. Comparing the aggregate's update ``a = agg - x`` with each
client's update ``d = y - x`` (``x`` the global adapter) makes it visible per client:

- ``agg_cosine``: cos(d, a); near 1 for an update the aggregate follows, low for one it ignored;
- ``agg_distance``: |agg - y| / |d|; 0 when the aggregate *is* that update (Krum's pick).

Numbers only, per client id, computed before any server-side DP noise is added.
"""

from __future__ import annotations

import math

import numpy as np
from flwr.app import ArrayRecord

Tensors = dict[str, np.ndarray]


def snapshot(record: ArrayRecord) -> Tensors:
    """A copy of a reply's arrays, taken before the aggregator (some, like FedMedian, consume them)."""
    return {k: a.numpy().astype(np.float64) for k, a in record.items()}


def _flat(arrays: Tensors, minus: Tensors) -> np.ndarray:
    return np.concatenate([(v - minus[k]).ravel() for k, v in arrays.items()])


def aggregate_alignment(
    global_arrays: ArrayRecord, updates: dict[int, Tensors], aggregate: ArrayRecord
) -> dict[int, tuple[float, float]]:
    """``{client: (agg_cosine, agg_distance)}`` for each ``(client, snapshot)`` that was aggregated."""
    x = snapshot(global_arrays)
    a = _flat(snapshot(aggregate), x)
    a_norm = float(np.linalg.norm(a))
    out: dict[int, tuple[float, float]] = {}
    for client, y in updates.items():
        d = _flat(y, x)
        d_norm = float(np.linalg.norm(d))
        cosine = float(d @ a) / (d_norm * a_norm) if d_norm and a_norm else math.nan
        distance = float(np.linalg.norm(a - d)) / d_norm if d_norm else math.nan
        out[client] = (cosine, distance)
    return out
