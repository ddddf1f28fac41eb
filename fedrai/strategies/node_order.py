"""Reproducible client sampling: the server lists nodes in partition order, not in Flower's order.

Flower's strategies sample with ``random.sample(list(grid.get_node_ids()), n)``, and the round
loop seeds ``random`` per (seed, round). That alone does not make a run reproducible: Flower's
simulation gives its nodes random ids and the SuperLink returns them as a set, so the same seeded
draw lands on other partitions from run to run. :class:`PartitionOrderedGrid` asks every node
once for its partition id (a ``query.site`` message; a number, never data) and lists the nodes in
partition order, so the same seed samples the same partitions in every run and after a resume.
The ask leaves ``random``'s state as it found it: Flower's heartbeat and retry jitter draw from it
in background threads for as long as the round trip lasts, which would move round 1's draw.
Nodes without a partition (deployed sites) follow in node-id order.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import Any

from flwr.app import Message, RecordDict

from fedrai.strategies.validation import PARTITION_METRIC

SITE_ACTION = "site"  # the ClientApp's ``@app.query(SITE_ACTION)`` answers with its partition id
SITE_QUERY = f"query.{SITE_ACTION}"

log = logging.getLogger(__name__)


class PartitionOrderedGrid:
    """A Grid whose ``get_node_ids`` lists nodes by partition id; everything else is the wrapped Grid's."""

    def __init__(self, grid: Any, *, timeout: float | None = None) -> None:
        self._grid = grid
        self._timeout = timeout
        self._rank: dict[int, tuple[int, int]] = {}  # node id -> (partition or a large number, node id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def get_node_ids(self) -> Iterable[int]:
        ids = list(self._grid.get_node_ids())
        unknown = [n for n in ids if n not in self._rank]
        if unknown:  # asked while Flower's sampler waits for nodes, between the round's seed and its draw:
            state = random.getstate()  # Flower's heartbeat and retry threads draw from `random` meanwhile,
            try:  # as many times as the round trip lasts, so the seeded draw must not see the ask
                self._rank.update(self._ask(unknown))
            finally:
                random.setstate(state)
        return sorted(ids, key=lambda n: self._rank[n])

    def _ask(self, nodes: list[int]) -> dict[int, tuple[int, int]]:
        unplaced = 1 << 62  # after every partition id
        rank = {n: (unplaced, n) for n in nodes}
        messages = [Message(RecordDict(), dst_node_id=n, message_type=SITE_QUERY) for n in nodes]
        for reply in self._grid.send_and_receive(messages, timeout=self._timeout):
            if reply.has_error():
                log.warning("node %s did not say its partition: %s", reply.metadata.src_node_id, reply.error)
                continue
            metrics = reply.content.metric_records.get("metrics")
            if metrics is not None and PARTITION_METRIC in metrics:
                node = int(reply.metadata.src_node_id)
                rank[node] = (int(metrics[PARTITION_METRIC]), node)
        return rank
