"""What every command shares: the console, one-line errors, loading an experiment, ``--set``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.text import Text

from fedrai.config import ConfigError, ExperimentConfig
from fedrai.console import make_console

console = make_console()  # plain, unwrapped lines when stdout is not a terminal

SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: section.key=value (repeatable).")
]


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` on one line, exit 2; the text is literal (it may hold ``[...]``)."""
    console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def load_experiment(path: Path, overrides: list[str] | None, out: Path | None = None) -> ExperimentConfig:
    """The experiment at ``path`` with ``--set`` overrides (and ``--out``); a bad config is a one-line error."""
    try:
        cfg = ExperimentConfig.from_toml(path, overrides or [])
    except ConfigError as err:
        fail(str(err))
    if out is not None:
        cfg.output.dir = str(out)
    return cfg
