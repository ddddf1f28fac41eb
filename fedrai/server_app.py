"""The Flower ServerApp: read the experiment config from the run config and run the rounds."""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedrai.config import ExperimentConfig
from fedrai.rounds import run_rounds

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = ExperimentConfig.from_run_config(dict(context.run_config))
    run_dir = Path(str(context.run_config.get("run-dir", "") or cfg.run_dir())).resolve()
    print(f"fedrai: run dir {run_dir}", flush=True)  # `flwr run` users learn where outputs go
    run_rounds(grid, cfg, run_dir, resume=bool(context.run_config.get("resume", False)))
