"""``fedrai report RUN_DIR... [--out DIR]``.

``fedrai.cli`` mounts ``report_command`` as ``fedrai report``; this module's ``app`` is the command alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="Compare runs: markdown table and per-round plots.")


def report_command(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run dirs (each with config.toml, metrics.jsonl, summary.json).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where report.md and the PNGs go.")] = Path(
        "report"
    ),
) -> None:
    """Write OUT/report.md (runs side by side, like the paper's table) and per-round curve PNGs;
    print AdvBench, HHH and MT-Bench beside the paper's figures."""
    from fedrai.report.build import build_report, paper_comparison
    from fedrai.report.runs import ReportError, load_run

    try:
        path = build_report(run_dirs, out)
        against = paper_comparison([load_run(d) for d in run_dirs])
    except ReportError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo("\n".join(against))  # the gap to the paper at a glance; the full report is in the file
    typer.echo(f"wrote {path}")


app.command("report")(report_command)
