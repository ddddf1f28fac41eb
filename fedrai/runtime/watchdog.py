"""A watchdog process that stops a run's Flower stack when the process that started it dies.

``fedrai run`` stops everything it started on return, on errors, Ctrl-C and SIGTERM; SIGKILL
(or the OOM killer) gives it no chance, and the SuperLink, SuperExec, flwr-simulation and Ray
would run on, reparented to PID 1. ``PR_SET_PDEATHSIG`` does not help: it is cleared in every
grandchild, and Flower starts SuperExec in a new session.

So every run gets one small watchdog process (its own session, so a terminal's Ctrl-C cannot
take it down first). It reads PIDs to watch, one a line, from a pipe whose only write end the
run holds; it samples their descendants every half second (so processes orphaned later are
still known, by PID and create time); and when the pipe closes, because the run closed it or
because the kernel closed it on the run's death, it stops every known process still alive:
SIGTERM, SIGINT, then SIGKILL after ``GRACE_S``. Run as ``python -m fedrai.runtime.watchdog``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import psutil

from fedrai.runtime.processes import ProcessTracker, stop_process_tree

GRACE_S = 2.0
INTERVAL_S = 0.5


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the closed pipe ends the watch
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    trackers: list[ProcessTracker] = []
    lock = threading.Lock()
    closed = threading.Event()

    def read() -> None:
        for line in sys.stdin:
            if line.strip().isdigit():
                tracker = ProcessTracker(int(line), interval_s=INTERVAL_S).start()
                with lock:
                    trackers.append(tracker)
        closed.set()  # EOF: the run closed the pipe, or died and the kernel closed it

    threading.Thread(target=read, name="watch-pipe", daemon=True).start()
    closed.wait()
    with lock:
        watched = list(trackers)
    known: dict[int, psutil.Process] = {}
    for tracker in watched:
        tracker.sample()
        tracker.stop()
        for proc in tracker.processes():
            known.setdefault(proc.pid, proc)
    for tracker in watched:
        stop_process_tree(tracker.root_pid, grace_s=GRACE_S, extra=known.values())
    os._exit(0)


if __name__ == "__main__":
    main()
