"""The Flower ServerApp: read the experiment config from the run config and run the rounds."""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedrai.config import ExperimentConfig
from fedrai.rounds import run_rounds
from fedrai.run_lock import run_dir_lock
from fedrai.run_state import finished_note, inspect, resume_refusal, start_refusal

app = ServerApp()


class RunDirRefused(RuntimeError):
    """The run dir holds another run (or nothing to resume): writing it would mix two runs."""


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = ExperimentConfig.from_run_config(dict(context.run_config))
    run_dir = Path(str(context.run_config.get("run-dir", "") or cfg.run_dir())).resolve()
    resume = bool(context.run_config.get("resume", False))
    print(f"fedrai: run dir {run_dir}", flush=True)  # `flwr run` users learn where outputs go
    # Under `fedrai run` the parent holds the run dir's lock and hands its token down; under a bare
    # `flwr run` the ServerApp takes the lock itself. A second writer fails here, before writing.
    with run_dir_lock(run_dir, token=str(context.run_config.get("lock-token", "") or "")):
        if check_run_dir(run_dir, resume=resume):
            run_rounds(grid, cfg, run_dir, resume=resume)


def check_run_dir(run_dir: Path, *, resume: bool) -> bool:
    """True when the rounds may run; False for a finished run being resumed (left as it is).

    Raises :class:`RunDirRefused` (after printing its one line, which is what `flwr run --stream`
    shows) when a new run would write into a dir that holds a run, or a resume has no checkpoint.
    ``fedrai run`` checks the same before it starts the stack; a bare ``flwr run`` meets it here.
    """
    state = inspect(run_dir)
    if resume:
        note = finished_note(state, str(run_dir))
        if note is not None:
            print(f"fedrai: {note}", flush=True)
            return False
        refusal = resume_refusal(state)
    else:
        refusal = start_refusal(state, how_to_resume="add resume=true to --run-config to continue it")
    if refusal is not None:
        print(f"fedrai: error: {refusal}", flush=True)
        raise RunDirRefused(refusal)
    return True
