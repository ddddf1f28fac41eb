"""Whether a run dir may start a run, resume one, or is finished; and the one line that says so.

``fedrai run``, ``fedrai run --resume`` and the ServerApp (also under a bare ``flwr run``) ask the
same questions of a run dir, so a user gets the same answer whichever way they started: a new run
never writes into a dir that holds one (two runs' rows would mix), a resume without a checkpoint
fails at once, and a finished run is left as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fedrai import checkpoint as ckpt_format
from fedrai.run_dir import RunDir


@dataclass(frozen=True)
class RunState:
    """What a run dir holds: rows, a checkpoint (its round), a summary (its rounds)."""

    path: Path
    has_rows: bool
    checkpoint_round: int | None
    finished_rounds: int | None  # from summary.json: written only when the last round is done

    @property
    def holds_run(self) -> bool:
        return self.has_rows or self.finished_rounds is not None

    @property
    def finished(self) -> bool:
        return self.finished_rounds is not None


def inspect(run_dir: str | Path) -> RunState:
    """Read a run dir's state from its files (cheap: manifests and the summary only, no tensors)."""
    rd = RunDir(run_dir)
    return RunState(
        path=rd.path,
        has_rows=rd.metrics.is_file() and rd.metrics.stat().st_size > 0,
        checkpoint_round=ckpt_format.completed_round(rd.checkpoint),
        finished_rounds=_summary_rounds(rd.summary),
    )


def _summary_rounds(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        rounds = json.loads(path.read_text(encoding="utf-8")).get("rounds")
    except (OSError, ValueError, AttributeError):
        return 0  # a summary is there but unreadable: the run still ended
    return int(rounds) if isinstance(rounds, int) else 0


def start_refusal(state: RunState, *, how_to_resume: str) -> str | None:
    """Why a new run may not start in this dir (None: it may)."""
    if not state.holds_run:
        return None
    what = "a finished run" if state.finished else "a run"
    return f"{state.path} already holds {what}; {how_to_resume} or use another run dir"


def resume_refusal(state: RunState) -> str | None:
    """Why there is nothing to resume (None: there is a checkpoint of an unfinished run)."""
    if state.checkpoint_round is not None or ckpt_format.exists(state.path / "checkpoint"):
        return None  # an unreadable or old-format checkpoint: loading it says exactly why
    why = "the run was interrupted before its first round finished" if state.holds_run else "no run yet"
    return (
        f"{state.path}: no checkpoint to resume from ({why}); "
        "start it again in another run dir (or delete this one)"
    )


def finished_note(state: RunState, run_dir_hint: str) -> str | None:
    """The line a resume of a finished run prints instead of doing anything (None: not finished)."""
    if not state.finished:
        return None
    rounds = f"{state.finished_rounds} round{'' if state.finished_rounds == 1 else 's'}"
    return (
        f"run already finished ({rounds}): {state.path}; nothing to resume. "
        f"`fedrai eval {run_dir_hint}` scores it again, `fedrai report {run_dir_hint}` shows it"
    )


def interrupted_hint(run_dir: str | Path, num_rounds: int) -> str:
    """The line printed when a run is stopped (Ctrl-C, SIGTERM): how far it got, how to go on."""
    state = inspect(run_dir)
    if state.checkpoint_round is None:
        return (
            "interrupted before round 1 finished; nothing to resume: "
            f"start again in another run dir (or delete {state.path})"
        )
    if state.finished or state.checkpoint_round >= num_rounds:
        return f"interrupted after the last round ({num_rounds}); see {state.path}"
    return (
        f"interrupted after round {state.checkpoint_round} of {num_rounds}; "
        f"resume with: fedrai run --resume {state.path}"
    )
