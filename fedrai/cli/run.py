"""``fedrai run`` and ``fedrai demo``: one experiment as a Flower simulation on Ray, start to end."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fedrai.cli.common import SetOption, console, fail, load_experiment
from fedrai.config import ExperimentConfig

DEMO_EXPERIMENT = Path(__file__).resolve().parents[1] / "presets" / "demo.toml"

ROUND_LINE = re.compile(r"\[fedrai\] round (\d+)/")


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
            fail("--resume takes the run dir's own config.toml; do not pass an experiment or --set")
        cfg = load_experiment(resume / "config.toml", [], out=resume)
        try:
            with run_dir_lock(resume):  # a run dir being written: name its writer first
                state = run_state.inspect(resume)
        except RunDirBusy as err:
            fail(str(err))
        note = run_state.finished_note(state, str(resume))
        if note is not None:  # a finished run stays as it is: its files are the record
            console.print(note, highlight=False, markup=False, soft_wrap=True)
            return
        refusal = run_state.resume_refusal(state)
        if refusal is not None:  # at once: no SuperLink, no Ray for nothing
            fail(refusal)
        run_dir = resume
    else:
        if experiment is None:
            fail("give an experiment TOML (e.g. `fedrai demo` runs the embedded default)")
        cfg = load_experiment(experiment, set_, out)
        run_dir = cfg.run_dir()
        refusal = run_state.start_refusal(run_state.inspect(run_dir), how_to_resume=f"use --resume {run_dir}")
        if refusal is not None:
            fail(refusal)
    start_run(cfg, run_dir.resolve(), resume=resume is not None)


def check_resumable(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Refuse a checkpoint that cannot be resumed (old pickle format, damaged) before the stack starts."""
    from fedrai.checkpoint import CheckpointError
    from fedrai.run_dir import RunDir

    rd = RunDir(run_dir)
    try:
        rd.load_checkpoint().check_strategy(cfg.strategy.name, rd.checkpoint)
    except CheckpointError as err:
        fail(str(err))


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
            fail(f"{run_dir} already holds a run; pass another --out or delete it")
        run_dir = run_dir.with_name(f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")  # keep earlier demos
        cfg.output.dir = str(run_dir)
    start_run(cfg, run_dir, resume=False)


def start_run(cfg: ExperimentConfig, run_dir: Path, *, resume: bool) -> None:
    """Assets, pre-flight and the run-dir lock first: every error is one line before any process starts."""
    from fedrai.assets import AssetError, fetch_for
    from fedrai.preflight import PreflightError, preflight
    from fedrai.run_lock import RunDirBusy, run_dir_lock
    from fedrai.run_state import inspect, start_refusal

    try:
        fetch_for(cfg)
    except AssetError as err:
        fail(str(err))
    try:
        preflight(cfg, run_dir)  # errors first: before a run dir, a SuperLink or Ray exists
    except PreflightError as err:
        fail(str(err))
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(run_dir_lock(run_dir))  # one writer per run dir, until we return
        except RunDirBusy as err:
            fail(str(err))
        if not resume and (
            refusal := start_refusal(inspect(run_dir), how_to_resume=f"use --resume {run_dir}")
        ):
            fail(refusal)  # another run wrote here meanwhile
        if resume:  # the holder's lock first, then its checkpoint: before the stack starts
            check_resumable(cfg, run_dir)
        run_locked(cfg, run_dir, resume=resume)


def run_locked(cfg: ExperimentConfig, run_dir: Path, *, resume: bool) -> None:
    """Run the simulation under the lock: round lines, a status line in a terminal, the closing table."""
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
            fail(str(err))
            return
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the stack is stopped; say how to go on (exit 130)
            status.stop()
            console.print(interrupted_hint(run_dir, cfg.federation.num_rounds), highlight=False, markup=False)
            raise
    rd = RunDir(run_dir)
    rows = rd.read_metrics()
    width = console.width if console.is_terminal else None  # a log gets the whole wide table
    console.print(rounds_table(rows, title=f"{cfg.name} ({result.seconds:.0f} s)", width=width))
    for line in guard_effect_lines(rows, rd.read_clients()):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"run dir: {run_dir}   (flower log: {result.log_path})")
