"""``fedrai sweep``: the command line of the sweep runner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedrai.sweep.plan import SweepError
from fedrai.sweep.runner import execute_sweep

# Exit codes of `fedrai sweep`: 0 = every selected cell finished; 1..100 = that many cells failed
# (capped); INVALID_EXIT = the sweep or a cell's config is invalid and nothing ran; 130 = interrupted.
MAX_FAILED_EXIT = 100
INVALID_EXIT = 101
INTERRUPTED_EXIT = 130  # as `fedrai run`, the shell's code for Ctrl-C


def sweep_command(
    sweep: Annotated[
        Path, typer.Argument(help="Sweep TOML (base experiment x settings x strategies x seeds).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Sweep dir (default: the sweep's `out`, else runs/NAME).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only cells whose id matches: glob or substring (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the cells and their config differences.")
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Cells run at once, each its own simulation (own SuperLink port, Ray, run dir). "
            "Give each cell the CPUs it needs: jobs x clients at a time x federation.cpus_per_client.",
        ),
    ] = 1,
) -> None:
    """Run a whole table: every cell is a run dir; done cells are skipped, interrupted ones resumed.

    Exit code: 0 when every selected cell finished, else the number of failed cells (at most 100);
    101 when the sweep is invalid and nothing ran; 130 when interrupted (Ctrl-C, SIGTERM), with the
    command that goes on.
    """
    try:
        outcome = execute_sweep(sweep, out, only=only, dry_run=dry_run, jobs=jobs)
    except SweepError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(INVALID_EXIT) from None
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the running cells are stopped; say how to go on
        again = " ".join(
            [
                "fedrai sweep",
                str(sweep),
                *(["--out", str(out)] if out else []),
                *(f"--only {o}" for o in only or []),
            ]
        )
        typer.echo(
            f"sweep interrupted; go on with: {again}  (done cells are skipped, interrupted ones resumed)",
            err=True,
        )
        raise typer.Exit(INTERRUPTED_EXIT) from None
    if outcome.failed:
        typer.echo(f"{len(outcome.failed)} cell(s) failed: {', '.join(outcome.failed)}", err=True)
        raise typer.Exit(min(len(outcome.failed), MAX_FAILED_EXIT))
