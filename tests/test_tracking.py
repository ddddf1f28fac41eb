"""Every metrics row reaches TensorBoard and MLflow with the keys of metrics.jsonl (offline)."""

from __future__ import annotations

import json
import math

import pytest

from fedrai.run_dir import RunDir
from fedrai.tracking import numeric_metrics
from tests.test_rounds import make_config, run


def test_numeric_metrics_keeps_finite_numbers_only() -> None:
    row = {
        "round": 2,
        "train_loss": 1.5,
        "clients": 2,
        "gate.rejected": True,
        "x": None,
        "nan": math.nan,
        "label": "a",
        "nested": {"a": 1},
    }
    assert numeric_metrics(row) == {"train_loss": 1.5, "clients": 2.0, "gate.rejected": 1.0}


def test_run_dir_listeners_see_each_row_after_it_is_written(tmp_path) -> None:
    run_dir = RunDir(tmp_path / "r")
    seen: list[tuple[int, int]] = []
    run_dir.listeners.append(lambda row: seen.append((row["round"], len(run_dir.read_metrics()))))
    run_dir.append_metrics({"round": 0})
    run_dir.append_metrics({"round": 1})
    assert seen == [(0, 1), (1, 2)]


def test_tensorboard_gets_every_round(tiny_model_dir, pairs_jsonl, tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run", "tracking.tensorboard=true")
    run(cfg)
    rows = RunDir(cfg.output.dir).read_metrics()
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {k for r in rows for k in numeric_metrics(r)}
    assert expected and tags == expected
    loss = [(e.step, e.value) for e in events.Scalars("train_loss")]
    assert loss == [(r["round"], pytest.approx(r["train_loss"])) for r in rows if "train_loss" in r]
    assert [e.step for e in events.Scalars("seconds")] == [0, 1, 2]


def test_mlflow_gets_params_and_every_round(tiny_model_dir, pairs_jsonl, tmp_path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run", "tracking.mlflow=true")
    run(cfg)
    rows = RunDir(cfg.output.dir).read_metrics()
    client = MlflowClient(f"sqlite:///{tmp_path / 'run' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("inprocess")
    (mlrun,) = client.search_runs([experiment.experiment_id])
    assert mlrun.info.status == "FINISHED"
    assert mlrun.info.run_name == "run"
    assert mlrun.data.params["federation.num_rounds"] == "2"
    assert mlrun.data.params["lora.target_modules"] == json.dumps(cfg.lora.target_modules).replace('"', "'")
    history = client.get_metric_history(mlrun.info.run_id, "train_loss")
    assert sorted((m.step, m.value) for m in history) == [
        (r["round"], pytest.approx(r["train_loss"])) for r in rows if "train_loss" in r
    ]
    assert set(mlrun.data.metrics) == {k for r in rows for k in numeric_metrics(r)}
