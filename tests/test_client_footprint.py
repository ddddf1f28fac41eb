"""What a client reports about itself (Ray node, peak memory) and what it avoids holding."""

from __future__ import annotations

from pathlib import Path

from fedrai.clients.placement import PEAK_RSS_KEY, peak_rss_mb, placement
from fedrai.run_dir import RunDir
from fedrai.strategies.registry import RoundTraffic


def test_peak_rss_is_this_process_in_mib() -> None:
    import psutil

    rss = psutil.Process().memory_info().rss / 2**20
    assert rss * 0.9 <= peak_rss_mb() < 64 * 1024  # the peak is at least what is resident now


def test_outside_ray_a_client_names_no_host() -> None:
    assert placement() == {"node": "", "host": "", "pid": ""}


def test_round_row_keeps_the_largest_client_and_the_node_count(tmp_path: Path) -> None:
    t = RoundTraffic(sampled=3)
    t.client_metrics = [
        {"num-examples": 2.0, PEAK_RSS_KEY: 900.0},
        {"num-examples": 2.0, PEAK_RSS_KEY: 1500.0},
    ]
    t.clients = [{"node": "a" * 56, PEAK_RSS_KEY: 900.0}, {"node": "b" * 56, PEAK_RSS_KEY: 1500.0}]
    row = t.summary()
    assert row[PEAK_RSS_KEY] == 1500.0 and row["client.nodes"] == 2.0
    run = RunDir(tmp_path)
    run.append_clients(1, t.clients)
    run.append_clients(2, [])
    assert [(r["round"], r["node"][0]) for r in run.read_clients()] == [(1, "a"), (1, "b")]


def test_iid_split_equals_flwr_datasets_without_importing_it() -> None:
    import subprocess
    import sys

    import datasets
    from flwr_datasets.partitioner import IidPartitioner

    from fedrai.data.partition import contiguous_shards

    for n, k in [(10, 3), (149, 4), (7, 7), (400, 6)]:
        items = list(range(100, 100 + n))
        ref = IidPartitioner(num_partitions=k)
        ref.dataset = datasets.Dataset.from_list([{"i": i} for i in items])
        assert contiguous_shards(items, k) == [ref.load_partition(j)["i"] for j in range(k)]
    code = (
        "import sys; from fedrai.config import PartitionConfig; from fedrai.data.partition import partition_rows;"
        "rows=[{'id': str(i), 'origin': 'benign', 'group': 'g'} for i in range(20)];"
        "partition_rows(rows, 3, PartitionConfig(), 0);"
        "assert 'datasets' not in sys.modules and 'flwr_datasets' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
