"""Split rows over clients (flwr-datasets partitioners), mix in harmful pairs, hold out rows.

Partitioning runs on a two-column ``datasets.Dataset`` (row index + label) rather than on the rows
themselves, so rows come back exactly as loaded (Arrow would add ``None`` keys to ragged structs).
All randomness is seeded, so every process that builds the split gets the same one.
"""

from __future__ import annotations

import random
import warnings

from fedrai.config import PartitionConfig
from fedrai.data import Row

_INDEX = "row_index"
_LABEL = "label"
PARTITION_BY = ("group", "origin")


def partition_rows(rows: list[Row], num_clients: int, cfg: PartitionConfig, seed: int) -> list[list[Row]]:
    """IID or Dirichlet label-skewed partitions, each capped at ``cfg.rows_per_client``."""
    if num_clients < 1:
        raise ValueError(f"federation.num_clients = {num_clients}: need at least one client")
    if len(rows) < num_clients:
        raise ValueError(
            f"{len(rows)} training rows cannot fill federation.num_clients = {num_clients} partitions; "
            "lower num_clients or data.heldout_rows, or raise data.max_rows"
        )
    cap = cfg.rows_per_client or None
    if cfg.method == "iid":
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        return [[rows[i] for i in part[:cap]] for part in contiguous_shards(order, num_clients)]
    import datasets
    from flwr_datasets.partitioner import DirichletPartitioner

    if cfg.partition_by not in PARTITION_BY:
        raise ValueError(
            f"partition.partition_by = {cfg.partition_by!r}: rows can be skewed by {', '.join(PARTITION_BY)}"
        )
    if len(rows) < num_clients * cfg.min_partition_size:
        raise ValueError(
            f"partition.min_partition_size = {cfg.min_partition_size} x federation.num_clients = "
            f"{num_clients} exceeds the {len(rows)} training rows; lower partition.min_partition_size"
        )
    partitioner = DirichletPartitioner(
        num_partitions=num_clients,
        partition_by=_LABEL,
        alpha=cfg.alpha,
        min_partition_size=cfg.min_partition_size,
        self_balancing=False,
        shuffle=True,
        seed=seed,
    )
    partitioner.dataset = datasets.Dataset.from_list(
        [{_INDEX: i, _LABEL: str(row[cfg.partition_by])} for i, row in enumerate(rows)]  # type: ignore[literal-required]
    )
    try:
        with warnings.catch_warnings():
            # flwr-datasets warns on every Dirichlet resample; the failure below says what to change
            warnings.simplefilter("ignore")
            parts = [partitioner.load_partition(i)[_INDEX] for i in range(num_clients)]
    except ValueError as err:
        raise ValueError(
            f"Dirichlet split of {len(rows)} rows over {num_clients} clients failed ({err}); every client "
            f"needs partition.min_partition_size = {cfg.min_partition_size} rows: raise partition.alpha "
            f"(now {cfg.alpha}) or lower partition.min_partition_size"
        ) from None
    return [[rows[i] for i in part[:cap]] for part in parts]


def contiguous_shards(items: list[int], num_shards: int) -> list[list[int]]:
    """What flwr-datasets' ``IidPartitioner`` returns (``Dataset.shard(contiguous=True)``), in plain
    Python: a client process that splits IID never imports ``datasets``/``flwr_datasets`` (with
    pandas, pyarrow, scipy and matplotlib, about 140 MB resident in every Ray client actor)."""
    size, extra = divmod(len(items), num_shards)
    out, start = [], 0
    for i in range(num_shards):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def mix_harmful(client_rows: list[Row], harmful_pool: list[Row], fraction: float, seed: int) -> list[Row]:
    """Add harmful pairs so they make up ``fraction`` of the result, as the paper's ~30% harmful clients.

    Pool rows are drawn without replacement while they last; a client that needs more than the
    pool reuses it, and a reused row gets an ``#N`` id suffix so ids stay unique within a client.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"data.harmful_fraction = {fraction}: must be in [0, 1)")
    count = round(len(client_rows) * fraction / (1.0 - fraction))
    if count == 0:
        return list(client_rows)
    if not harmful_pool:
        raise ValueError(
            f"data.harmful_fraction = {fraction} needs harmful rows, but the harmful pool is empty"
        )
    rng = random.Random(seed)
    drawn: list[Row] = []
    copy = 0
    while len(drawn) < count:
        copy += 1
        take = rng.sample(harmful_pool, min(len(harmful_pool), count - len(drawn)))
        drawn += take if copy == 1 else [Row(**{**row, "id": f"{row['id']}#{copy}"}) for row in take]
    mixed = list(client_rows) + drawn
    rng.shuffle(mixed)
    return mixed


def split_heldout(rows: list[Row], n: int, seed: int) -> tuple[list[Row], list[Row]]:
    """A seeded sample of ``n`` rows kept out of training (for server-side loss); order is kept."""
    if n <= 0:
        return list(rows), []
    if n >= len(rows):
        raise ValueError(f"data.heldout_rows = {n} leaves no training rows out of {len(rows)}")
    held = set(random.Random(seed).sample(range(len(rows)), n))
    train = [row for i, row in enumerate(rows) if i not in held]
    return train, [row for i, row in enumerate(rows) if i in held]
