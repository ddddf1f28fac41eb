"""fedrai: federated LoRA fine-tuning with a safety filter and constitutional AI, on Flower + Ray."""

from __future__ import annotations

import signal

import typer

from fedrai.cli import assets, config, deploy, report, run, safety
from fedrai.cli import eval as eval_cli
from fedrai.sweep import sweep_command

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.command("run")(run.run)
app.command("demo")(run.demo)
app.command("eval")(eval_cli.eval_command)
app.command("report")(report.report_command)
app.command("sweep")(sweep_command)
app.add_typer(assets.app, name="assets")
app.add_typer(config.app, name="config")
app.add_typer(safety.app, name="safety", help="Safety filter: score data, train the filter head.")
app.add_typer(deploy.app, name="deploy")


def main() -> None:
    """The ``fedrai`` entry point (and ``python -m fedrai``)."""
    # A run started in the background inherits an ignored SIGINT, and `kill PID` sends SIGTERM:
    # both must still stop the SuperLink and Ray it started, so both become KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    app()


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: the run's ``finally`` blocks stop its processes, and the exit code is 130."""
    raise KeyboardInterrupt(f"signal {signum}")
