"""Process trees stopped by PID: the tracker that samples a SuperLink's descendants while they live, the
watchdog that stops them if ``fedrai`` itself dies, and log tails for error messages.

SuperExec leaves the SuperLink's process group (Flower starts it in a new session), so a ``killpg``
alone is not enough: every descendant seen while the run was alive is stopped by PID at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import psutil

# Flower's logger always colours its output (no switch in 1.42), and Ray prefixes are coloured too.
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


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


def alive_processes(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
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
    targets = alive_processes(procs.values())
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
    survivors = alive_processes(survivors)
    if survivors:
        _signal_all(survivors, signal.SIGINT)
        _, survivors = psutil.wait_procs(survivors, timeout=max(0.0, grace_s - 1.0))
        survivors = alive_processes(survivors)
    if survivors:
        everyone = {p.pid: p for p in survivors}
        for proc in _tree(p.pid for p in survivors):
            everyone.setdefault(proc.pid, proc)
        survivors = alive_processes(everyone.values())
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


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file ("" if it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return ANSI_RE.sub("", "".join(deque(fh, maxlen=lines)))
    except OSError:
        return ""
