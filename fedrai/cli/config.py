"""``fedrai config ...``: validate an experiment, print the config reference."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from fedrai.cli.common import SetOption, load_experiment
from fedrai.config import reference_markdown

app = typer.Typer(help="Check experiment configs and print the reference.", no_args_is_help=True)


@app.command("check")
def config_check(experiment: Path, set_: SetOption = None) -> None:
    """Validate an experiment and print the resolved config."""
    cfg = load_experiment(experiment, set_)
    sys.stdout.write(cfg.to_toml())


@app.command("reference")
def config_reference() -> None:
    """Print every config key with its type, default and meaning (markdown)."""
    sys.stdout.write(reference_markdown() + "\n")
