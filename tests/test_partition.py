"""Partitioning, harmful mixing, held-out rows and the per-client build every process repeats."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fedrai.config import ExperimentConfig, PartitionConfig
from fedrai.data import Row
from fedrai.data.client_data import build_client_datasets, client_rows, heldout_rows, site_rows
from fedrai.data.partition import mix_harmful, partition_rows, split_heldout
from tests.conftest import write_jsonl

GROUPS = ("cooking", "math", "poetry", "travel")


def _rows(n: int, origin: str = "benign", prefix: str = "b") -> list[Row]:
    return [
        Row(
            id=f"{prefix}:{i}",
            messages=[{"role": "user", "content": f"q{i}"}],
            response=f"a{i}",
            origin=origin,
            group=GROUPS[i % len(GROUPS)],
        )
        for i in range(n)
    ]


def _ids(parts: list[list[Row]]) -> list[list[str]]:
    return [[r["id"] for r in p] for p in parts]


def _distribution(part: list[Row]) -> list[float]:
    counts = Counter(r["group"] for r in part)
    return [counts[g] / len(part) for g in GROUPS]


def _max_tv_distance(parts: list[list[Row]]) -> float:
    """Largest total-variation distance between any client's group mix and the overall mix."""
    overall = _distribution([r for p in parts for r in p])
    return max(0.5 * sum(abs(a - b) for a, b in zip(_distribution(p), overall, strict=True)) for p in parts)


# ----------------------------------------------------------------------------- partition_rows
def test_iid_sizes_cover_every_row_once() -> None:
    rows = _rows(102)
    parts = partition_rows(rows, 4, PartitionConfig(), seed=0)
    assert sorted(len(p) for p in parts) == [25, 25, 26, 26]
    assert sorted(r["id"] for p in parts for r in p) == sorted(r["id"] for r in rows)
    assert {id(r) for p in parts for r in p} == {id(r) for r in rows}  # the loaded rows themselves
    assert _max_tv_distance(parts) < 0.2


def test_iid_is_shuffled_and_seeded() -> None:
    rows = _rows(40)
    a = partition_rows(rows, 4, PartitionConfig(), seed=1)
    assert _ids(a) == _ids(partition_rows(rows, 4, PartitionConfig(), seed=1))
    assert _ids(a) != _ids(partition_rows(rows, 4, PartitionConfig(), seed=2))
    assert _ids(a)[0] != [r["id"] for r in rows[:10]]  # not contiguous shards


def test_dirichlet_small_alpha_skews_labels() -> None:
    rows = _rows(400)
    cfg = PartitionConfig(method="dirichlet", alpha=0.1, min_partition_size=5)
    parts = partition_rows(rows, 4, cfg, seed=0)
    assert sum(len(p) for p in parts) == 400 and min(len(p) for p in parts) >= 5
    assert _max_tv_distance(parts) > 0.4
    assert _ids(parts) == _ids(partition_rows(rows, 4, cfg, seed=0))
    assert _ids(parts) != _ids(partition_rows(rows, 4, cfg, seed=1))
    large = partition_rows(rows, 4, cfg.model_copy(update={"alpha": 1000.0}), seed=0)
    assert _max_tv_distance(large) < 0.15


def test_dirichlet_by_origin() -> None:
    rows = _rows(60) + _rows(60, origin="harmful", prefix="h")
    cfg = PartitionConfig(method="dirichlet", partition_by="origin", alpha=0.2, min_partition_size=2)
    assert sum(len(p) for p in partition_rows(rows, 3, cfg, seed=0)) == 120


def test_dirichlet_impossible_min_size_names_the_knob() -> None:
    cfg = PartitionConfig(method="dirichlet", alpha=0.5, min_partition_size=30)
    with pytest.raises(ValueError, match=r"partition.min_partition_size = 30 x federation.num_clients = 4"):
        partition_rows(_rows(100), 4, cfg, seed=0)
    tight = PartitionConfig(method="dirichlet", alpha=0.01, min_partition_size=24)
    with pytest.raises(ValueError, match=r"raise partition.alpha .* lower partition.min_partition_size"):
        partition_rows(_rows(100), 4, tight, seed=0)


def test_bad_partition_by_and_too_few_rows() -> None:
    with pytest.raises(ValueError, match="partition.partition_by = 'response'"):
        partition_rows(_rows(10), 2, PartitionConfig(method="dirichlet", partition_by="response"), seed=0)
    with pytest.raises(ValueError, match=r"3 training rows cannot fill federation.num_clients = 4"):
        partition_rows(_rows(3), 4, PartitionConfig(), seed=0)


def test_rows_per_client_cap() -> None:
    parts = partition_rows(_rows(100), 4, PartitionConfig(rows_per_client=7), seed=0)
    assert [len(p) for p in parts] == [7, 7, 7, 7]


# ----------------------------------------------------------------------------- mix_harmful / heldout
@pytest.mark.parametrize(("n", "fraction"), [(70, 0.3), (10, 0.3), (33, 0.5), (100, 0.05)])
def test_mix_harmful_fraction(n: int, fraction: float) -> None:
    mixed = mix_harmful(_rows(n), _rows(200, "harmful", "h"), fraction, seed=0)
    harmful = sum(r["origin"] == "harmful" for r in mixed)
    assert len(mixed) - harmful == n
    assert abs(harmful / len(mixed) - fraction) <= 0.5 / len(mixed) + 1e-9
    assert mixed != _rows(n) + [r for r in mixed if r["origin"] == "harmful"]  # shuffled in
    assert mixed == mix_harmful(_rows(n), _rows(200, "harmful", "h"), fraction, seed=0)


def test_mix_harmful_reuses_a_small_pool_with_unique_ids() -> None:
    mixed = mix_harmful(_rows(70), _rows(4, "harmful", "h"), 0.3, seed=0)
    harmful_ids = [r["id"] for r in mixed if r["origin"] == "harmful"]
    assert len(harmful_ids) == 30 and len(set(harmful_ids)) == 30
    assert any(i.endswith("#8") for i in harmful_ids)


def test_mix_harmful_edge_cases() -> None:
    rows = _rows(5)
    assert mix_harmful(rows, [], 0.0, seed=0) == rows
    with pytest.raises(ValueError, match="harmful pool is empty"):
        mix_harmful(rows, [], 0.3, seed=0)
    with pytest.raises(ValueError, match="data.harmful_fraction"):
        mix_harmful(rows, _rows(3, "harmful"), 1.0, seed=0)


def test_split_heldout() -> None:
    rows = _rows(50)
    train, held = split_heldout(rows, 8, seed=0)
    assert len(train) == 42 and len(held) == 8
    assert {r["id"] for r in train}.isdisjoint(r["id"] for r in held)
    assert (train, held) == split_heldout(rows, 8, seed=0)
    assert held != split_heldout(rows, 8, seed=1)[1]
    assert split_heldout(rows, 0, seed=0) == (rows, [])
    with pytest.raises(ValueError, match="data.heldout_rows = 50"):
        split_heldout(rows, 50, seed=0)


# ----------------------------------------------------------------------------- the whole build
@pytest.fixture
def experiment(tmp_path: Path) -> ExperimentConfig:
    benign = [{"prompt": f"q{i}", "response": f"a{i}", "group": GROUPS[i % 4]} for i in range(120)]
    harmful = [
        {"user": f"harm {i}", "assistant": f"sure {i}", "category": "Harmful" if i % 3 else "Not harmful"}
        for i in range(30)
    ]
    write_jsonl(tmp_path / "benign.jsonl", benign)
    (tmp_path / "many_shot_examples.json").write_text(json.dumps(harmful), encoding="utf-8")
    return ExperimentConfig.from_dict(
        {
            "seed": 7,
            "data": {
                "source": str(tmp_path / "benign.jsonl"),
                "harmful_source": str(tmp_path / "many_shot_examples.json"),
                "harmful_fraction": 0.3,
                "heldout_rows": 12,
            },
            "partition": {"method": "dirichlet", "alpha": 0.3, "min_partition_size": 4},
            "federation": {"num_clients": 4},
        }
    )


def test_build_client_datasets(experiment: ExperimentConfig) -> None:
    data = build_client_datasets(experiment)
    assert len(data.heldout) == 12 and all(r["origin"] == "benign" for r in data.heldout)
    held = {r["id"] for r in data.heldout}
    benign = [r for p in data.partitions for r in p if r["origin"] == "benign"]
    assert len(benign) == 108 and held.isdisjoint(r["id"] for r in benign)
    for part in data.partitions:
        harmful = [r for r in part if r["origin"] != "benign"]
        assert all(r["origin"] == "harmful" for r in harmful)  # Not-harmful pairs are never mixed in
        assert abs(len(harmful) / len(part) - 0.3) <= 0.5 / len(part) + 1e-9
    report = data.load_report
    assert report["rows"] == 120 and report["heldout"] == 12 and report["harmful"]["pool"] == 20
    assert sum(report["partition_sizes"]) == 108
    assert report["client_sizes"] == [len(p) for p in data.partitions]
    again = build_client_datasets(experiment)
    assert _ids(again.partitions) == _ids(data.partitions)


def test_client_rows_match_build_and_are_private_copies(experiment: ExperimentConfig) -> None:
    data = build_client_datasets(experiment)
    for pid in range(4):
        assert client_rows(experiment, pid) == data.partitions[pid]
    mine = client_rows(experiment, 0)
    mine[0]["response"] = "rewritten by a guard"
    assert client_rows(experiment, 0)[0]["response"] != "rewritten by a guard"
    assert heldout_rows(experiment) == data.heldout
    with pytest.raises(ValueError, match="partition id 4 is outside 0..3"):
        client_rows(experiment, 4)


def test_site_rows(experiment: ExperimentConfig) -> None:
    rows = site_rows(experiment.data.source, experiment)
    assert sum(r["origin"] == "benign" for r in rows) == 120
    assert abs(sum(r["origin"] == "harmful" for r in rows) / len(rows) - 0.3) < 0.01
    plain = experiment.model_copy(
        update={"data": experiment.data.model_copy(update={"harmful_fraction": 0.0})}
    )
    assert len(site_rows(experiment.data.source, plain)) == 120
