"""Run one experiment as a real Flower simulation (SuperLink + Ray) and leave no process behind.

Why a harness instead of ``flwr run . local``: the ``local`` connection starts a detached SuperLink
that outlives the run, uses fixed ports (39091/39093) and the user's ``~/.flwr``. Here every run gets
its own ``FLWR_HOME`` under the run dir, a SuperLink on a free port that this process starts in its
own session, and a teardown that stops every process the SuperLink spawned by PID.

Process tree of one run (Flower 1.42, Linux)::

    flower-superlink --simulation           (ours, start_new_session=True: its own session/pgid)
      flower-superexec                      (Flower starts it with start_new_session=True: escapes
                                             the SuperLink's process group)
        flwr-simulation                     (ServerApp runs in-process; Ray driver)
          gcs_server, raylet, log_monitor, dashboard agents, ray::ClientAppActor workers ...

Because SuperExec leaves the SuperLink's process group, a ``killpg`` alone is not enough: the
harness samples the SuperLink's descendants while the run is alive (so processes that get orphaned
later are still known) and stops every one of them by PID at the end.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from fedrai.config import ExperimentConfig
from fedrai.run_lock import run_dir_lock
from fedrai.runtime.flower_app import (
    CONNECTION_NAME,
    DEFAULT_COMPONENTS,
    FLOWER_LOG,
    FLWR_HOME_NAME,
    SUPERLINK_LOG,
    available_cpus,
    build_run_config,
    executable,
    federation_config_args,
    flower_env,
    ray_env,
    write_app_dir,
)
from fedrai.runtime.processes import (
    ANSI_RE,
    ProcessTracker,
    Watchdog,
    alive_processes,
    stop_process_tree,
    tail,
)
from fedrai.runtime.superlink import SimulationError, managed_superlink

_RUN_ID_RE = re.compile(r"Successfully started run (\d+)")
# Flower's logger always colours its output (no switch in 1.42), and Ray prefixes are coloured too.


@dataclass(frozen=True)
class SimulationResult:
    """What a finished run reports; ``pids`` lets callers verify that nothing survived."""

    returncode: int
    seconds: float
    log_path: Path
    run_id: int | None = None
    status: str = ""
    superlink_start_s: float = 0.0
    pids: tuple[int, ...] = ()


# --------------------------------------------------------------------------- the run
def run_simulation(
    config: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    on_output: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
    components: tuple[str, str] = DEFAULT_COMPONENTS,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> SimulationResult:
    """Run ``config`` as a Flower simulation through a SuperLink this call starts and stops.

    Streams ``flwr run --stream`` output line by line into ``run_dir/flower.log`` and to
    ``on_output``; SuperLink/SuperExec/simulation console output goes to ``run_dir/superlink.log``.
    Raises :class:`SimulationError` (with log tails) when the SuperLink does not start, the run
    does not finish as ``completed``, or ``timeout_s`` passes. Every process is stopped on return,
    on error and on KeyboardInterrupt. Holds the run dir's writer lock throughout (raises
    :class:`~fedrai.run_lock.RunDirBusy` when another process writes it). ``components`` swaps
    the ServerApp/ClientApp (tests use a toy app); ``env`` replaces our environment for the
    Flower processes; ``cwd`` is theirs (default: ours).
    """
    with run_dir_lock(run_dir) as lock_token:
        return _run_simulation_locked(
            config, Path(run_dir).resolve(), resume, on_output, timeout_s, components, env, cwd, lock_token
        )


def _run_simulation_locked(
    config: ExperimentConfig,
    run_dir: Path,
    resume: bool,
    on_output: Callable[[str], None] | None,
    timeout_s: float | None,
    components: tuple[str, str],
    env: dict[str, str] | None,
    cwd: Path | None,
    lock_token: str,
) -> SimulationResult:
    t_start = time.monotonic()
    deadline = None if timeout_s is None else t_start + timeout_s
    fed = config.federation
    ray_cpus = available_cpus()
    env = ray_env(fed.ray_address, env)
    if not fed.ray_address and fed.cpus_per_client > ray_cpus:
        raise SimulationError(
            f"federation.cpus_per_client = {fed.cpus_per_client} exceeds the {ray_cpus} CPUs available: "
            "Ray could never schedule a ClientApp"
        )
    run_config = build_run_config(config, run_dir, resume=resume, lock_token=lock_token)
    app_dir = write_app_dir(run_dir, run_config, components)
    flwr_home = run_dir / FLWR_HOME_NAME
    log_path = run_dir / FLOWER_LOG
    superlink_log = run_dir / SUPERLINK_LOG
    fed_args = federation_config_args(
        fed.num_clients,
        fed.cpus_per_client,
        fed.gpus_per_client,
        ray_num_cpus=ray_cpus,
        existing_cluster=bool(fed.ray_address),
    )
    startup = 60.0 if deadline is None else max(1.0, min(60.0, deadline - time.monotonic()))
    with managed_superlink(
        flwr_home, log_path=superlink_log, env=env, cwd=cwd, startup_timeout_s=startup
    ) as link:
        run_env = flower_env(flwr_home, env)
        cmd = [executable("flwr"), "run", str(app_dir), CONNECTION_NAME, "--stream"]
        for item in fed_args:
            cmd += ["--federation-config", item]
        returncode, run_id = stream_flwr_run(
            cmd,
            run_env,
            cwd=run_dir,
            log_path=log_path,
            on_output=on_output,
            deadline=deadline,
            tracker=link.tracker,
            superlink_log=superlink_log,
            watchdog=link.watchdog,
        )
        if returncode != 0:
            raise SimulationError(
                failure_message(f"`flwr run` exited with code {returncode}", log_path, superlink_log)
            )
        status = run_status(run_id, run_env, run_dir) if run_id is not None else ""
        link.tracker.sample()
        pids = tuple(p.pid for p in link.tracker.processes())
        link_start = link.start_seconds
    if run_id is None:
        raise SimulationError(failure_message("`flwr run` did not report a run id", log_path, superlink_log))
    if not status.endswith(":completed"):
        raise SimulationError(
            failure_message(f"run {run_id} ended as {status or 'unknown'!r}", log_path, superlink_log)
        )
    return SimulationResult(
        returncode=returncode,
        seconds=time.monotonic() - t_start,
        log_path=log_path,
        run_id=run_id,
        status=status,
        superlink_start_s=link_start,
        pids=pids,
    )


def stream_flwr_run(
    cmd: list[str],
    env: dict[str, str],
    *,
    cwd: Path,
    log_path: Path,
    on_output: Callable[[str], None] | None,
    deadline: float | None,
    tracker: ProcessTracker | None,
    superlink_log: Path,
    watchdog: Watchdog | None = None,
) -> tuple[int, int | None]:
    """Run ``cmd``, tee its lines to ``log_path``/``on_output``; enforce the deadline; return (rc, run id).

    With a ``tracker``, a ``flwr-simulation`` process that dies while the stream goes on (killed,
    OOM) fails the run within seconds; Flower itself notices only after a heartbeat timeout (~1 min).
    """
    run_id: int | None = None
    simulation = _SimulationWatch(tracker) if tracker is not None else None
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(cwd),
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(ANSI_RE.sub("", raw.decode("utf-8", errors="replace")))
        lines.put(None)

    if watchdog is not None:
        watchdog.watch(proc.pid)
    reader = threading.Thread(target=pump, name="flwr-run-output", daemon=True)
    reader.start()
    try:
        with open(log_path, "a", encoding="utf-8") as log:
            while True:
                if simulation is not None and simulation.dead_for() > SIMULATION_DEATH_GRACE_S:
                    status = _status_once(run_id, env, cwd) if run_id is not None else ""
                    if status.endswith(":completed"):
                        return 0, run_id  # it finished; only the log stream lingered
                    raise SimulationError(
                        failure_message(
                            f"flwr-simulation (pid {simulation.pid}) exited before the run finished "
                            f"(status {status or 'unknown'!r})",
                            log_path,
                            superlink_log,
                        )
                    )
                wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                try:
                    line = lines.get(timeout=wait)
                except queue.Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise SimulationError(
                            failure_message("run timed out", log_path, superlink_log)
                        ) from None
                    continue
                if line is None:
                    break
                log.write(line)
                log.flush()
                if run_id is None and (m := _RUN_ID_RE.search(line)):
                    run_id = int(m.group(1))
                    if tracker is not None:  # the run's processes exist now: remember them
                        tracker.sample()
                if on_output is not None:
                    on_output(line.rstrip("\n"))
        return proc.wait(), run_id
    finally:
        if proc.poll() is None:
            stop_process_tree(proc.pid, grace_s=5.0)
        with contextlib.suppress(Exception):
            proc.wait(timeout=5.0)
        reader.join(timeout=2.0)


def run_status(run_id: int, env: dict[str, str], cwd: Path) -> str:
    """The run's final status (``finished:completed`` / ``finished:failed`` ...) from ``flwr ls``.

    ``flwr run --stream`` exits 0 whether the ServerApp succeeded or raised, so the status is the
    only reliable verdict.
    """

    status = ""
    for _ in range(20):  # the status flips to finished shortly after the log stream ends
        status = _status_once(run_id, env, cwd)
        if status.startswith("finished"):
            return status
        time.sleep(0.5)
    return status


def _status_once(run_id: int, env: dict[str, str], cwd: Path) -> str:
    cmd = [executable("flwr"), "ls", CONNECTION_NAME, "--run-id", str(run_id), "--format", "json"]
    out = subprocess.run(cmd, env=env, cwd=str(cwd), capture_output=True, text=True, timeout=60)
    try:
        runs = json.loads(out.stdout[out.stdout.index("{") :]).get("runs", [])
    except ValueError:
        runs = []
    return str(runs[0].get("status", "")) if runs else ""


SIMULATION_DEATH_GRACE_S = 3.0


class _SimulationWatch:
    """Finds the run's ``flwr-simulation`` among the tracked processes and says how long it is dead."""

    def __init__(self, tracker: ProcessTracker) -> None:
        self.tracker = tracker
        self.proc: psutil.Process | None = None
        self._checked: set[int] = set()
        self._dead_since: float | None = None
        self._next = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def dead_for(self) -> float:
        now = time.monotonic()
        if now < self._next:
            return 0.0 if self._dead_since is None else now - self._dead_since
        self._next = now + 0.5
        if self.proc is None:
            for proc in self.tracker.processes():
                if proc.pid not in self._checked:
                    self._checked.add(proc.pid)
                    if _is_simulation(proc):
                        self.proc = proc
                        break
            return 0.0
        if self._dead_since is None and not alive_processes([self.proc]):
            self._dead_since = now
        return 0.0 if self._dead_since is None else now - self._dead_since


def _is_simulation(proc: psutil.Process) -> bool:
    try:
        return any(Path(arg).name == "flwr-simulation" for arg in proc.cmdline()[:3])
    except psutil.Error:
        return False


def failure_message(what: str, flower_log: Path, superlink_log: Path) -> str:
    return (
        f"{what}\n--- {flower_log} (last lines) ---\n{tail(flower_log)}"
        f"--- {superlink_log} (last lines) ---\n{tail(superlink_log)}"
    )
