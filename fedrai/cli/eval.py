"""``fedrai eval``: evaluate a base model (+ adapter) standalone and write JSON.

``fedrai.cli`` mounts ``eval_command`` as ``fedrai eval``; this module's ``app`` is the command alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="Evaluate a model on AdvBench and benign prompts.")


def eval_command(
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            help="A run dir: its config.toml (model, eval sizes, tokens, sources, held-out rows) and "
            "its last adapter."
        ),
    ] = None,
    run: Annotated[Path | None, typer.Option("--run", help="Same as the RUN_DIR argument.")] = None,
    round_: Annotated[
        int | None, typer.Option("--round", help="With a run dir: the adapter of this round (default: last).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Hub id, local dir or embedded:NAME (default: the config's)."),
    ] = None,
    adapter: Annotated[str | None, typer.Option("--adapter", help="peft adapter dir to apply.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Experiment TOML (a run dir's config.toml works).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override, e.g. eval.max_new_tokens=64 (repeatable).")
    ] = None,
    advbench: Annotated[
        int | None, typer.Option("--advbench", help="AdvBench prompts to score (the final set's size).")
    ] = None,
    benign: Annotated[
        int | None, typer.Option("--benign", help="Benign prompts to score (the final set's size).")
    ] = None,
    heldout: Annotated[
        Path | None, typer.Option("--heldout", help="JSONL/CSV of prompt,response rows for held-out loss.")
    ] = None,
    per_round: Annotated[
        bool, typer.Option("--per-round", help="Score the per-round subsets instead of the final sets.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="JSON file to write (default: RUN_DIR/eval/round-N.json, else eval.json)."
        ),
    ] = None,
) -> None:
    """Evaluate a run's adapter (fedrai eval RUN_DIR) or MODEL (+ ADAPTER); write metrics and responses as JSON.

    Without a run dir or --config the defaults are the config's: all 520 AdvBench and 80 benign
    prompts (a few minutes on a CPU); --advbench / --benign choose fewer.
    """
    from fedrai.config import ConfigError, ExperimentConfig, apply_override
    from fedrai.evaluation.progress import EvalProgress, format_duration
    from fedrai.evaluation.standalone import evaluate_model
    from fedrai.progress import format_metric
    from fedrai.quiet import routed_warnings

    def fail(message: str) -> None:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    if run is not None and run_dir is not None and run != run_dir:
        fail("give the run dir once (RUN_DIR or --run)")
    run_dir = run_dir or run
    overrides = list(set_ or [])
    if model:
        overrides.append(f"model.name_or_path={json.dumps(model)}")
    if advbench is not None:
        overrides.append(f"eval.advbench_final={advbench}")
    if benign is not None:
        overrides.append(f"eval.benign_final={benign}")
    if run_dir is not None:
        if config is not None:
            fail("a run dir brings its own config.toml; use --set to change it, not --config")
        config = run_dir / "config.toml"
        if not config.is_file():
            fail(f"{run_dir}: not a run dir (no config.toml)")
        if adapter is None:
            adapter, round_ = _run_adapter(run_dir, round_, fail)
        out = out or run_dir / "eval" / f"round-{round_}.json"
    elif round_ is not None:
        fail("--round needs a run dir")
    out = out or Path("eval.json")
    try:
        if config:
            cfg = ExperimentConfig.from_toml(config, overrides)
        else:
            data: dict = {}
            for item in overrides:
                apply_override(data, item)
            cfg = ExperimentConfig.from_dict(data, origin="--set")
    except ConfigError as err:
        fail(str(err))
        return
    rows = None
    if run_dir is not None and heldout is None and cfg.data.heldout_rows > 0:
        from fedrai.data.client_data import heldout_rows

        rows = heldout_rows(cfg)  # the run's own held-out rows: the same loss the run reported
    what = cfg.model.name_or_path + (f" + {adapter}" if adapter else "")
    typer.echo(f"loading {what}", err=True)
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with routed_warnings(out.with_suffix(".warnings.log")) as routed:
        result = evaluate_model(
            cfg,
            adapter=adapter,
            heldout=heldout,
            heldout_rows=rows,
            per_round_sets=per_round,
            progress=EvalProgress(),
            announce=lambda line: typer.echo(line, err=True),
        )
    out.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    for key, value in result["metrics"].items():
        typer.echo(f"{key:34s} {format_metric(key, value)}")
    typer.echo(f"wrote {out} ({format_duration(time.perf_counter() - started)})")
    if routed.note():
        typer.echo(routed.note(), err=True)


def _run_adapter(run_dir: Path, round_: int | None, fail: Callable[[str], None]) -> tuple[str, int]:
    """``RUN_DIR/adapters/round-N`` for ``round_``, or the last saved round."""
    rounds = sorted(
        int(d.name.removeprefix("round-"))
        for d in (run_dir / "adapters").glob("round-*")
        if d.name.removeprefix("round-").isdigit() and (d / "adapter_config.json").is_file()
    )
    if not rounds:
        fail(f"{run_dir}: no adapters/round-N/ saved yet")
    chosen = rounds[-1] if round_ is None else round_
    if chosen not in rounds:
        fail(f"{run_dir}: no adapter for round {chosen} (saved: {', '.join(map(str, rounds))})")
    return str(run_dir / "adapters" / f"round-{chosen}"), chosen


app.command("eval")(eval_command)
