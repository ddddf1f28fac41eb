"""Running a sweep: every selected cell in table order, up to ``jobs`` at once, then the report.

A cell with ``summary.json`` is done and skipped; one with a checkpoint but no summary is resumed;
a failing cell is recorded in the status file and the sweep goes on. With ``jobs > 1`` each running
cell is its own simulation (its own SuperLink on its own port, its own Ray, its own run dir, its own
run-dir lock) driven from a thread of this process; the status file is shared under a lock.
"""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fedrai.run_lock import RunDirBusy, run_dir_lock
from fedrai.sweep.base_model import run_base_model
from fedrai.sweep.plan import Cell, SweepError, SweepPlan, describe, load_sweep, select
from fedrai.sweep.status import StatusFile, now

REPORT_DIR = "report"
CANCEL_GRACE_S = 30.0  # how long Ctrl-C waits for running cells to stop their processes


@dataclass
class SweepOutcome:
    """What :func:`execute_sweep` did: the selected cells' run dirs, failures, and the report."""

    run_dirs: list[Path]
    failed: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    report: Path | None = None


class CellCancelled(Exception):
    """Ctrl-C during a parallel sweep: a running cell stops at its next line of output."""


def fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def error_text(err: BaseException, limit: int = 4000) -> str:
    text = f"{type(err).__name__}: {err}"
    if not str(err):
        text += "\n" + "".join(traceback.format_exception(err))
    return text if len(text) <= limit else text[:1000] + "\n...\n" + text[-(limit - 1000) :]


def fetch_assets(cells: Sequence[Cell]) -> None:
    """Fetch every ``embedded:`` asset once, before the first cell starts its workers."""
    from fedrai.assets import fetch_for

    seen: set[str] = set()
    for cell in cells:
        key = cell.config.to_toml()
        if key not in seen:
            seen.add(key)
            fetch_for(cell.config)


def run_fl_cell(
    cell: Cell,
    resume: bool,
    log: Callable[[str], None],
    prefix: str,
    cancel: threading.Event | None = None,
) -> None:
    """One FL cell as a simulation; ``cancel`` (parallel sweeps) stops it at its next output line."""
    from fedrai.run_dir import RunDir
    from fedrai.runtime import run_simulation

    if resume:  # an old (pickle) or damaged checkpoint fails here, with its reason, before any stack starts
        run = RunDir(cell.run_dir)
        run.load_checkpoint().check_strategy(cell.config.strategy.name, run.checkpoint)

    def show(line: str) -> None:
        if cancel is not None and cancel.is_set():
            raise CellCancelled(f"{cell.id}: interrupted")
        if "[fedrai]" in line:
            log(f"{prefix} {line[line.index('[fedrai]') :]}")

    if cancel is not None and cancel.is_set():
        raise CellCancelled(f"{cell.id}: interrupted before it started")
    run_simulation(cell.config, cell.run_dir.resolve(), resume=resume, on_output=show)


def clear_partial(run_dir: Path) -> None:
    """A run that died before its first checkpoint restarts from scratch: drop its stale rows."""
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "adapters", ignore_errors=True)


def execute_sweep(
    sweep_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    only: str | Sequence[str] | None = None,
    dry_run: bool = False,
    jobs: int = 1,
    log: Callable[[str], None] = lambda m: print(m, flush=True),
) -> SweepOutcome:
    """Validate every cell, then run the selected ones (up to ``jobs`` at once) and build the report.

    Raises :class:`SweepError` before running anything if the sweep or any cell is invalid or
    ``only`` selects nothing. Failed cells do not stop the sweep; they are listed in the outcome
    and in ``OUT/sweep_status.json``.
    """
    if jobs < 1:
        raise SweepError(f"--jobs must be >= 1, got {jobs}")
    plan = load_sweep(sweep_path, out_dir)
    cells = select(plan.cells, only)
    if not cells:
        raise SweepError(f"--only {only!r} matches none of: {', '.join(c.id for c in plan.cells)}")
    outcome = SweepOutcome(run_dirs=[c.run_dir for c in cells])
    if dry_run:
        for line in describe(plan, cells):
            log(line)
        return outcome

    fetch_assets(cells)
    try:
        with run_dir_lock(plan.out_dir):  # one sweep per sweep dir (each cell's run also locks its run dir)
            return _Run(plan, cells, outcome, log, jobs).execute()
    except RunDirBusy as err:
        raise SweepError(str(err)) from None


class _Run:
    """One execution of a plan: the status file, the timing for ETAs, and the running cells."""

    def __init__(
        self,
        plan: SweepPlan,
        cells: Sequence[Cell],
        outcome: SweepOutcome,
        log: Callable[[str], None],
        jobs: int,
    ) -> None:
        self.plan, self.cells, self.outcome, self.jobs = plan, list(cells), outcome, jobs
        self._log_lock = threading.Lock()
        self._log = log
        self._lock = threading.Lock()
        self.cancel = threading.Event()
        self.status = StatusFile(plan.out_dir, plan)
        self.started = time.monotonic()
        self.durations: list[float] = []
        self.remaining = 0

    def log(self, line: str) -> None:
        with self._log_lock:
            self._log(line)

    def eta(self) -> str:
        with self._lock:
            if not self.durations:
                return "ETA after the first cell"
            mean = sum(self.durations) / len(self.durations)
            return f"ETA {fmt_s(mean * self.remaining / min(self.jobs, max(1, self.remaining)))}"

    def execute(self) -> SweepOutcome:
        plan, cells, status = self.plan, self.cells, self.status
        status.write()
        to_run = [c for c in cells if c.state != "done"]
        self.remaining = len(to_run)
        jobs = f", {self.jobs} at once" if self.jobs > 1 else ""
        self.log(
            f"[sweep] {plan.name}: {len(cells)} cell(s), {len(to_run)} to run, "
            f"{len(cells) - len(to_run)} done{jobs} -> {plan.out_dir}"
        )
        threads: list[threading.Thread] = []
        try:
            for i, cell in enumerate(cells, 1):
                prefix = f"[sweep {i}/{len(cells)}]"
                if self.jobs == 1 or cell.state == "done":
                    self.run_cell(cell, prefix)
                    continue
                while sum(t.is_alive() for t in threads) >= self.jobs:
                    time.sleep(0.1)
                thread = threading.Thread(
                    target=self.run_cell, args=(cell, prefix), name=cell.id, daemon=True
                )
                thread.start()
                threads.append(thread)
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)
        except KeyboardInterrupt:
            self.stop(threads)
            raise
        self.report()
        status.write()
        o = self.outcome
        self.log(
            f"[sweep] {plan.name}: {len(o.ran)} ran, {len(o.skipped)} skipped, "
            f"{len(o.failed)} failed in {fmt_s(time.monotonic() - self.started)}; status: {status.path}"
        )
        return o

    def stop(self, threads: list[threading.Thread]) -> None:
        """Ctrl-C: running cells stop their processes (each marks itself interrupted)."""
        self.cancel.set()
        deadline = time.monotonic() + CANCEL_GRACE_S
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        # A cell still running now is left to its watchdog, which stops its processes once we exit.

    def run_cell(self, cell: Cell, prefix: str) -> None:
        status, outcome = self.status, self.outcome
        state = cell.state
        if state == "done":
            self.log(f"{prefix} {cell.id}: complete, skipped")
            with self._lock:
                outcome.skipped.append(cell.id)
            status.update(cell, state="done")
            return
        elapsed = time.monotonic() - self.started
        action = "resuming" if state == "resume" else "running"
        self.log(
            f"{prefix} {cell.id}: {action} ({cell.setting}, {cell.strategy}, seed {cell.seed}); "
            f"elapsed {fmt_s(elapsed)}, {self.eta()}"
        )
        status.update(cell, state="running", started=now(), resumed=state == "resume", error=None)
        t0 = time.monotonic()
        try:
            if cell.base_model:
                with run_dir_lock(cell.run_dir):
                    run_base_model(cell)
            else:
                if state == "new":
                    clear_partial(cell.run_dir)
                cancel = self.cancel if self.jobs > 1 else None
                run_fl_cell(cell, state == "resume", self.log, prefix, cancel)
        except (KeyboardInterrupt, CellCancelled):
            status.update(cell, state="interrupted", seconds=round(time.monotonic() - t0, 1))
            if self.jobs == 1:
                raise
            return
        except Exception as err:  # noqa: BLE001 - a failing cell is recorded and the sweep goes on
            seconds = self.finished(time.monotonic() - t0)
            with self._lock:
                outcome.failed.append(cell.id)
            status.update(cell, state="failed", seconds=round(seconds, 1), error=error_text(err))
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            self.log(f"{prefix} {cell.id}: FAILED after {fmt_s(seconds)}: {first}")
            return
        seconds = self.finished(time.monotonic() - t0)
        with self._lock:
            outcome.ran.append(cell.id)
        status.update(cell, state="done", seconds=round(seconds, 1))
        self.log(f"{prefix} {cell.id}: done in {fmt_s(seconds)}")

    def finished(self, seconds: float) -> float:
        with self._lock:
            self.durations.append(seconds)
            self.remaining -= 1
        return seconds

    def report(self) -> None:
        finished = [c.run_dir for c in self.plan.cells if (c.run_dir / "summary.json").is_file()]
        if not finished:
            return
        try:
            from fedrai.report import build_report

            self.outcome.report = build_report(finished, self.plan.out_dir / REPORT_DIR)
            self.status.set("report", str(self.outcome.report))
            self.log(f"[sweep] report of {len(finished)} run(s): {self.outcome.report}")
        except Exception as err:  # noqa: BLE001 - the runs are done; a report can be rebuilt later
            self.status.set("report_error", error_text(err))
            self.log(f"[sweep] report failed: {err}")


def run_sweep(
    sweep_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    only: str | Sequence[str] | None = None,
    dry_run: bool = False,
    jobs: int = 1,
) -> list[Path]:
    """Run a sweep (see :mod:`fedrai.sweep`); return the selected cells' run dirs.

    Failures are in ``OUT/sweep_status.json`` (``read_status``); :func:`execute_sweep` returns them.
    """
    return execute_sweep(sweep_path, out_dir, only=only, dry_run=dry_run, jobs=jobs).run_dirs
