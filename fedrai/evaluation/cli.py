"""``fedrai eval``: evaluate a base model (+ adapter) standalone and write JSON.

Mount with ``app.command("eval")(eval_command)`` on the main Typer app, or run this module's
``app`` alone (``python -m fedrai.evaluation.cli``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="Evaluate a model on AdvBench and benign prompts.")


def eval_command(
    model: Annotated[
        str | None,
        typer.Option("--model", help="Hub id, local dir or embedded:NAME (default: the config's)."),
    ] = None,
    adapter: Annotated[str | None, typer.Option("--adapter", help="peft adapter dir to apply.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Experiment TOML (a run dir's config.toml works).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override, e.g. eval.advbench_final=100 (repeatable).")
    ] = None,
    heldout: Annotated[
        Path | None, typer.Option("--heldout", help="JSONL/CSV of prompt,response rows for held-out loss.")
    ] = None,
    per_round: Annotated[
        bool, typer.Option("--per-round", help="Score the per-round subsets instead of the final sets.")
    ] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file to write.")] = Path("eval.json"),
) -> None:
    """Evaluate MODEL (+ ADAPTER) and write metrics plus every response as JSON."""
    from fedrai.config import ConfigError, ExperimentConfig, apply_override
    from fedrai.evaluation.standalone import evaluate_model

    overrides = list(set_ or [])
    if model:
        overrides.append(f"model.name_or_path={json.dumps(model)}")
    try:
        if config:
            cfg = ExperimentConfig.from_toml(config, overrides)
        else:
            data: dict = {}
            for item in overrides:
                apply_override(data, item)
            cfg = ExperimentConfig.from_dict(data, origin="--set")
    except ConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    result = evaluate_model(cfg, adapter=adapter, heldout=heldout, per_round_sets=per_round)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    for key, value in result["metrics"].items():
        shown = f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) else value
        typer.echo(f"{key:34s} {shown}")
    typer.echo(f"wrote {out}")


app.command("eval")(eval_command)

if __name__ == "__main__":  # pragma: no cover
    app()
