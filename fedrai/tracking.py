"""Experiment trackers: every metrics row also goes to TensorBoard and/or MLflow.

Researchers compare runs in the tools they already use. The keys are exactly those of
``metrics.jsonl`` and the step is the round, so a curve in TensorBoard or MLflow is the same
number the report shows. Both are off by default (``[tracking]``) and optional dependencies
(``pip install 'fedrai[tracking]'``); nothing here talks to a network unless the MLflow URI
points at a server.
"""

from __future__ import annotations

import atexit
import math
import re
from pathlib import Path
from typing import Any, Protocol

from fedrai.config import ConfigError, ExperimentConfig

TENSORBOARD_DIR = "tensorboard"
MLFLOW_DB = "mlflow.db"


class Tracker(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


def numeric_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics row (the round itself is the step, not a metric)."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if key == "round" or isinstance(value, str) or value is None:
            continue
        if isinstance(value, (bool, int, float)) and math.isfinite(float(value)):
            out[key] = float(value)
    return out


class TensorBoardTracker:
    """Scalars under ``RUN_DIR/tensorboard``: ``tensorboard --logdir RUN_DIR/tensorboard``."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # torch's writer needs the tensorboard package
            raise ConfigError(
                f"tracking.tensorboard = true needs tensorboard: pip install 'fedrai[tracking]' ({err})"
            ) from None
        self.log_dir = log_dir
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, row: dict[str, Any]) -> None:
        step = int(row.get("round", 0))
        for key, value in numeric_metrics(row).items():
            self._writer.add_scalar(key, value, global_step=step)
        self._writer.flush()  # a crash or kill mid-run keeps every round written so far

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.close()


# MLflow accepts alphanumerics, underscores, dashes, periods, spaces, colons and slashes in names.
_MLFLOW_UNSAFE = re.compile(r"[^\w\-. :/]")


class MLflowTracker:
    """One MLflow run per fedrai run: the resolved config as params, each row's metrics at its round."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise ConfigError(
                f"tracking.mlflow = true needs mlflow: pip install 'fedrai[tracking]' ({err})"
            ) from None
        run_dir.mkdir(parents=True, exist_ok=True)
        self.uri = cfg.tracking.mlflow_tracking_uri or f"sqlite:///{run_dir.resolve() / MLFLOW_DB}"
        self._client = MlflowClient(tracking_uri=self.uri)
        name = cfg.tracking.mlflow_experiment or cfg.name
        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = self._client.create_experiment(
                name, artifact_location=(run_dir.resolve() / "mlflow-artifacts").as_uri()
            )
        else:
            experiment_id = experiment.experiment_id
        run = self._client.create_run(
            experiment_id,
            run_name=run_dir.name,
            tags={"fedrai.run_dir": str(run_dir.resolve()), "fedrai.setting": cfg.setting},
        )
        self.run_id = run.info.run_id
        self._params(cfg)
        self._closed = False

    def _params(self, cfg: ExperimentConfig) -> None:
        from mlflow.entities import Param

        flat = _flatten(cfg.model_dump(mode="json"))
        params = [Param(_MLFLOW_UNSAFE.sub("_", k), str(v)[:6000]) for k, v in sorted(flat.items())]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self._client.log_batch(self.run_id, params=params[i : i + 100])

    def log(self, row: dict[str, Any]) -> None:
        import time

        from mlflow.entities import Metric

        step = int(row.get("round", 0))
        now = int(time.time() * 1000)
        metrics = [Metric(_MLFLOW_UNSAFE.sub("_", k), v, now, step) for k, v in numeric_metrics(row).items()]
        for i in range(0, len(metrics), 1000):
            self._client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def close(self) -> None:
        self._end("FINISHED")

    def abort(self) -> None:
        self._end("FAILED")

    def _end(self, status: str) -> None:
        if not self._closed:
            self._closed = True
            self._client.set_terminated(self.run_id, status=status)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def open_trackers(cfg: ExperimentConfig, run_dir: Path) -> list[Tracker]:
    """The trackers ``[tracking]`` asks for; one the run did not close is aborted at exit."""
    trackers: list[Tracker] = []
    if cfg.tracking.tensorboard:
        trackers.append(TensorBoardTracker(run_dir / TENSORBOARD_DIR))
    if cfg.tracking.mlflow:
        trackers.append(MLflowTracker(cfg, run_dir))
    for tracker in trackers:
        atexit.register(tracker.abort)
    return trackers
