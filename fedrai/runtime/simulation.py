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
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import tomli_w

from fedrai.config import ExperimentConfig
from fedrai.run_lock import run_dir_lock
from fedrai.runtime.credentials import TlsFiles

DEFAULT_COMPONENTS: tuple[str, str] = ("fedrai.server_app:app", "fedrai.client_app:app")
APP_DIR_NAME = ".flwr-app"
FLWR_HOME_NAME = ".flwr"
CONNECTION_NAME = "fedrai"
FLOWER_LOG = "flower.log"
SUPERLINK_LOG = "superlink.log"

# Environment for every Flower process of a run: no `uv sync` of the app's dependencies (it would
# fetch a CUDA torch), no update check, no telemetry, no Ray usage stats, unbuffered Python output.
QUIET_ENV: dict[str, str] = {
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    "RAY_DEDUP_LOGS": "0",  # keep every ClientApp line in the stream (Ray folds repeats by default)
    "PYTHONUNBUFFERED": "1",
}

_RUN_ID_RE = re.compile(r"Successfully started run (\d+)")
# Flower's logger always colours its output (no switch in 1.42), and Ray prefixes are coloured too.
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class SimulationError(RuntimeError):
    """A run that failed, timed out, or whose SuperLink never became healthy (message has log tails)."""


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


@dataclass
class SuperLinkHandle:
    """A running SuperLink started by :func:`managed_superlink`."""

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path
    start_seconds: float
    tracker: ProcessTracker = field(repr=False)
    watchdog: Watchdog | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid


# --------------------------------------------------------------------------- app dir and config
def build_run_config(
    config: ExperimentConfig, run_dir: Path, *, resume: bool = False, lock_token: str = ""
) -> dict[str, Any]:
    """The ``[tool.flwr.app.config]`` of a run: the whole resolved config travels as one TOML string.

    ``lock_token``: the token of the run-dir lock this process holds; the ServerApp writes under it.
    """
    return {
        "config-toml": config.to_toml(),
        "experiment": "",
        "set": "",
        "resume": bool(resume),
        "run-dir": str(Path(run_dir).resolve()),
        "lock-token": lock_token,
    }


def write_app_dir(
    run_dir: Path,
    run_config: dict[str, Any],
    components: tuple[str, str] = DEFAULT_COMPONENTS,
    *,
    name: str = "fedrai-run",
    version: str = "0.1.0",
) -> Path:
    """Write ``run_dir/.flwr-app/pyproject.toml`` and return the app dir.

    The app dir holds no Python: the components are imported from the installed package, so the
    app bundle stays tiny (Flower packs ``*.py *.toml *.md ...`` of the app dir, 10 MB limit) and
    the run dir's outputs never get bundled.
    """
    serverapp, clientapp = components
    app_dir = Path(run_dir) / APP_DIR_NAME
    app_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "build-system": {"requires": ["setuptools>=68"], "build-backend": "setuptools.build_meta"},
        "project": {
            "name": name,
            "version": version,
            "description": "Generated by fedrai for one run; components come from the installed package.",
            "license": "Apache-2.0",
            "dependencies": [],
        },
        "tool": {
            "flwr": {
                "app": {
                    "publisher": "fedrai",
                    "components": {"serverapp": serverapp, "clientapp": clientapp},
                    "config": run_config,
                }
            }
        },
    }
    (app_dir / "pyproject.toml").write_text(tomli_w.dumps(doc, multiline_strings=True), encoding="utf-8")
    return app_dir


def write_flower_config(
    flwr_home: Path, address: str, *, name: str = CONNECTION_NAME, root_certificates: Path | None = None
) -> Path:
    """Write ``$FLWR_HOME/config.toml`` with one connection to ``address`` as the default.

    Insecure unless ``root_certificates`` (the deployment's CA) is given.

    Simulation options are not stored here: ``options.*`` in a connection is deprecated in Flower
    1.42 (``flwr run`` warns); they go to ``flwr run --federation-config`` instead.
    """
    flwr_home = Path(flwr_home)
    flwr_home.mkdir(parents=True, exist_ok=True)
    connection: dict[str, Any] = {"address": address}
    if root_certificates is None:
        connection["insecure"] = True
    else:
        connection["root-certificates"] = str(Path(root_certificates).resolve())
    doc = {"superlink": {"default": name, name: connection}}
    path = flwr_home / "config.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return path


def federation_config_args(
    num_supernodes: int,
    cpus_per_client: int,
    gpus_per_client: float,
    *,
    ray_num_cpus: int | None = None,
    verbose: bool = False,
    existing_cluster: bool = False,
) -> list[str]:
    """``--federation-config`` items for ``flwr run``: supernodes, client resources, Ray init args.

    ``existing_cluster``: the run joins a running Ray cluster, whose nodes declare their own CPUs
    and GPUs (``ray.init`` refuses ``num_cpus``/``num_gpus`` when it connects), so no init args.
    """
    items = [
        f"num-supernodes={int(num_supernodes)}",
        "backend='ray'",
        f"client-resources-num-cpus={int(cpus_per_client)}",
        f"client-resources-num-gpus={float(gpus_per_client)}",
        f"verbose={'true' if verbose else 'false'}",
    ]
    if existing_cluster:
        return items
    items.insert(4, f"init-args-num-cpus={int(ray_num_cpus or available_cpus())}")
    if gpus_per_client <= 0:
        items.append("init-args-num-gpus=0")  # keep Ray from grabbing GPUs nobody asked for
    return items


def ray_env(ray_address: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that points the simulation's ``ray.init()`` at the right Ray.

    Flower 1.42's federation config carries no Ray address, but ``ray.init()`` reads
    ``RAY_ADDRESS``. Empty means a private local Ray: ``RAY_ADDRESS=local``, because without it
    ``ray.init()`` joins any cluster this machine joined with ``ray start`` (and then refuses
    the run's ``num_cpus``).
    """
    env = dict(os.environ if base is None else base)
    env["RAY_ADDRESS"] = ray_address or "local"
    return env


def available_cpus() -> int:
    """CPUs this process may use (affinity-aware where the OS tells us)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def flower_env(flwr_home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Flower subprocesses: run-local FLWR_HOME, quiet flags, venv bin first on PATH.

    The venv bin must be on PATH because the SuperLink starts ``flower-superexec`` and
    ``flwr-simulation`` by name.
    """
    env = dict(os.environ if base is None else base)
    env.update(QUIET_ENV)
    env["FLWR_HOME"] = str(Path(flwr_home).resolve())
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def executable(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


_HANDED_OUT: set[int] = set()  # ports free_port gave this process: never given twice
_PORT_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago and that this process never handed out before.

    Parallel sweep cells (``fedrai sweep --jobs``) each start a SuperLink from one process: the
    kernel may offer a port again once its probe socket closes, and a SuperLink whose port another
    one already serves would pass the health check against the wrong server. A race with another
    process is still possible; the SuperLink start is retried when it loses one.
    """
    with _PORT_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


# --------------------------------------------------------------------------- processes
class Watchdog:
    """Our end of a :mod:`fedrai.runtime.watchdog` process: it stops what we watch once we are gone.

    Closing the pipe (:meth:`close`, or the kernel when this process dies by any signal, SIGKILL
    included) makes the watchdog stop every watched process and its descendants within seconds.
    """

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "fedrai.runtime.watchdog"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            start_new_session=True,  # a terminal's Ctrl-C to our group must not stop it first
        )

    @property
    def pid(self) -> int:
        return self._proc.pid

    def watch(self, pid: int) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.write(f"{pid}\n".encode())
            self._proc.stdin.flush()

    def close(self, timeout_s: float = 15.0) -> None:
        """Close the pipe and wait for the watchdog (it stops whatever is still alive, then exits)."""
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5.0)


class ProcessTracker:
    """Samples a process's descendants in the background, so orphans are still known at teardown."""

    def __init__(self, root_pid: int, interval_s: float = 0.5) -> None:
        self.root_pid = root_pid
        self.interval_s = interval_s
        self._seen: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"track-{root_pid}", daemon=True)

    def start(self) -> ProcessTracker:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def sample(self) -> None:
        found = _tree([self.root_pid])
        with self._lock:
            for proc in found:
                self._seen.setdefault(proc.pid, proc)

    def processes(self) -> list[psutil.Process]:
        with self._lock:
            return list(self._seen.values())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(Exception):
                self.sample()


def _tree(pids: Iterable[int]) -> list[psutil.Process]:
    """The processes with these PIDs and all their live descendants."""
    out: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            out.setdefault(proc.pid, proc)
            for child in proc.children(recursive=True):
                out.setdefault(child.pid, child)
        except psutil.Error:
            continue
    return list(out.values())


def _alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Still running (same PID *and* create time, so a reused PID never counts), zombies excluded."""
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def _signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)  # psutil checks the create time: never signals a reused PID


def stop_process_tree(
    pid: int,
    *,
    grace_s: float = 5.0,
    extra: Iterable[psutil.Process] = (),
) -> list[int]:
    """Stop ``pid``, its process group (if it leads one) and every descendant, by PID.

    SIGTERM to the root's process group and to each known process, SIGINT to survivors after 1 s,
    wait up to ``grace_s``, then SIGKILL
    whatever is left (re-walking the survivors' children first). ``extra`` adds processes seen
    earlier (e.g. by a :class:`ProcessTracker`) that may since have been orphaned. Returns the PIDs
    that were still alive when stopping began. Never matches processes by name.
    """
    procs = {p.pid: p for p in _tree([pid])}
    for proc in extra:
        procs.setdefault(proc.pid, proc)
    targets = _alive(procs.values())
    if not targets:
        return []
    pgid = _own_group(pid)
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    _signal_all(targets, signal.SIGTERM)
    # SIGINT after a moment: on SIGTERM uvicorn (the SuperLink's HTTP server) waits for open
    # connections (a log stream) to close; only SIGINT forces its exit.
    _, survivors = psutil.wait_procs(targets, timeout=min(1.0, grace_s))
    survivors = _alive(survivors)
    if survivors:
        _signal_all(survivors, signal.SIGINT)
        _, survivors = psutil.wait_procs(survivors, timeout=max(0.0, grace_s - 1.0))
        survivors = _alive(survivors)
    if survivors:
        everyone = {p.pid: p for p in survivors}
        for proc in _tree(p.pid for p in survivors):
            everyone.setdefault(proc.pid, proc)
        survivors = _alive(everyone.values())
        _signal_all(survivors, signal.SIGKILL)
        psutil.wait_procs(survivors, timeout=5.0)
    return [p.pid for p in targets]


def _own_group(pid: int) -> int | None:
    """``pid``'s process group if ``pid`` leads it and it is not ours (we never signal our own group)."""
    try:
        pgid = os.getpgid(pid)
    except (ProcessLookupError, PermissionError, AttributeError):
        return None
    return pgid if pgid == pid and pgid != os.getpgrp() else None


# --------------------------------------------------------------------------- SuperLink
def _healthy(address: str, timeout_s: float = 0.5, *, ca: Path | None = None) -> bool:
    """Flower's ``/health`` answers 2xx (over HTTPS, verified against ``ca``, when given)."""
    scheme = "https" if ca is not None else "http"
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    try:
        with urllib.request.urlopen(
            f"{scheme}://{address}/health", timeout=timeout_s, context=context
        ) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextlib.contextmanager
def managed_superlink(
    flwr_home: Path,
    *,
    log_path: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    simulation: bool = True,
    tls: TlsFiles | None = None,
    supernode_auth: bool = False,
    extra_args: Iterable[str] = (),
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    startup_timeout_s: float = 60.0,
    grace_s: float = 5.0,
) -> Iterator[SuperLinkHandle]:
    """Start ``flower-superlink`` on a free port, yield it once healthy, then stop its tree.

    Insecure by default (a simulation on loopback); ``tls`` serves HTTPS with those files and
    ``supernode_auth`` admits only SuperNodes whose public key was registered.

    The SuperLink runs in its own session (Ctrl-C in the terminal does not reach it; we stop it),
    writes stdout/stderr (including SuperExec's and the simulation's console output) to
    ``log_path``, and is stopped by PID with all its descendants even when the body raises.
    Writes the connection ``fedrai`` into ``$FLWR_HOME/config.toml``. ``cwd`` (default: ours) is
    inherited by the ServerApp and the Ray ClientApp actors, so relative paths in a config resolve
    there exactly as they do for the caller.
    """
    flwr_home = Path(flwr_home).resolve()
    flwr_home.mkdir(parents=True, exist_ok=True)
    env = flower_env(flwr_home, env)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 3
    last_error = ""
    for _ in range(attempts):
        use_port = port if port is not None else free_port(host)
        address = f"{host}:{use_port}"
        cmd = [executable("flower-superlink"), "--host", host, "--port", str(use_port)]
        if tls is None:
            cmd += ["--insecure"]
        else:
            cmd += ["--ssl-ca-certfile", str(tls.ca), "--ssl-certfile", str(tls.certificate)]
            cmd += ["--ssl-keyfile", str(tls.private_key)]
        if supernode_auth:
            cmd += ["--enable-supernode-auth"]
        cmd += ["--disable-runtime-dependency-installation"]
        if simulation:
            cmd += ["--simulation"]
        cmd += list(extra_args)
        t0 = time.monotonic()
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(Path(cwd) if cwd is not None else Path.cwd()),
                start_new_session=True,
            )
        watchdog = Watchdog()
        watchdog.watch(proc.pid)
        tracker = ProcessTracker(proc.pid).start()
        try:
            deadline = t0 + startup_timeout_s
            ca = tls.ca if tls is not None else None
            while time.monotonic() < deadline and proc.poll() is None and not _healthy(address, ca=ca):
                time.sleep(0.1)
            if proc.poll() is not None:
                last_error = f"flower-superlink exited with code {proc.returncode}"
                continue
            if not _healthy(address, ca=ca):
                last_error = f"flower-superlink not healthy at {address} after {startup_timeout_s:.0f} s"
                continue
            write_flower_config(flwr_home, address, root_certificates=ca)
            handle = SuperLinkHandle(proc, address, log_path, time.monotonic() - t0, tracker, watchdog)
            yield handle
            return
        finally:
            tracker.sample()
            tracker.stop()
            stop_process_tree(proc.pid, grace_s=grace_s, extra=tracker.processes())
            with contextlib.suppress(Exception):
                proc.wait(timeout=5.0)
            watchdog.close()
    raise SimulationError(f"{last_error}\n--- {log_path} (last lines) ---\n{tail(log_path)}")


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file ("" if it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _ANSI_RE.sub("", "".join(deque(fh, maxlen=lines)))
    except OSError:
        return ""


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
            lines.put(_ANSI_RE.sub("", raw.decode("utf-8", errors="replace")))
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
        if self._dead_since is None and not _alive([self.proc]):
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
