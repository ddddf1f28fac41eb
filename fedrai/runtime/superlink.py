"""A SuperLink on a free port, healthy before it is used, stopped with its whole tree afterwards."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fedrai.runtime.credentials import TlsFiles
from fedrai.runtime.flower_app import executable, flower_env, write_flower_config
from fedrai.runtime.processes import ProcessTracker, Watchdog, stop_process_tree, tail


class SimulationError(RuntimeError):
    """A run that failed, timed out, or whose SuperLink never became healthy (message has log tails)."""


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
