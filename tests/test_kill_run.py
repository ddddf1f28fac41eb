"""Kills survived: whatever kills `fedrai run` or its simulation, no process of the run lives on.

Real Flower + Ray runs on the tiny model; every descendant is collected by PID (psutil, with create
times, so a reused PID never counts) before the kill, and checked after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.test_reliability import tiny_experiment

pytestmark = pytest.mark.slow

GONE_WITHIN_S = 15.0


class FedraiRun:
    """A `fedrai run` in its own session, its output collected line by line."""

    def __init__(self, exp: Path, run_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fedrai", "run", str(exp), "--out", str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "300", "OMP_NUM_THREADS": "1"},
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)[-3000:]
            assert time.monotonic() < deadline, "".join(self.lines)[-3000:]
            time.sleep(0.2)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def _gone_within(procs: list[psutil.Process], timeout_s: float) -> tuple[float, list[psutil.Process]]:
    t0 = time.monotonic()
    while _alive(procs) and time.monotonic() - t0 < timeout_s:
        time.sleep(0.2)
    return time.monotonic() - t0, _alive(procs)


def _describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:100]}")
        except psutil.Error:
            out.append(str(p.pid))
    return out


def _kill_all(procs: list[psutil.Process]) -> None:
    for p in _alive(procs):
        with contextlib.suppress(psutil.Error):
            p.kill()


def _names(procs: list[psutil.Process]) -> str:
    return " ".join(sorted({" ".join(p.cmdline()[:2]) for p in procs if p.is_running()}))


def test_sigkill_of_fedrai_run_stops_the_whole_stack(tiny_model_dir: Path, tmp_path: Path) -> None:
    exp = tiny_experiment(tmp_path, tiny_model_dir, rounds=50)
    run = FedraiRun(exp, tmp_path / "run")
    procs: list[psutil.Process] = []
    try:
        run.wait_for("round 1/50")  # SuperLink, SuperExec, the simulation and Ray all up
        procs = run.descendants()
        names = _names(procs)
        for part in ("flower-superlink", "flower-superexec", "flwr-simulation", "raylet", "gcs_server"):
            assert part in names, names
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=10)
        seconds, survivors = _gone_within(procs, GONE_WITHIN_S)
        assert not survivors, _describe(survivors)
        record = {"processes": len(procs), "seconds_to_gone": round(seconds, 1)}
        (tmp_path / "kill.json").write_text(json.dumps(record), encoding="utf-8")
        print("sigkill of fedrai run:", record)
    finally:
        _kill_all(procs)
        if run.proc.poll() is None:
            run.proc.kill()


def test_a_killed_simulation_fails_the_run_within_seconds(tiny_model_dir: Path, tmp_path: Path) -> None:
    exp = tiny_experiment(tmp_path, tiny_model_dir, rounds=50)
    run = FedraiRun(exp, tmp_path / "run")
    procs: list[psutil.Process] = []
    try:
        run.wait_for("round 1/50")
        procs = run.descendants()
        sim = [p for p in procs if any(Path(a).name == "flwr-simulation" for a in p.cmdline()[:3])]
        assert len(sim) == 1, _describe(procs)
        t0 = time.monotonic()
        sim[0].kill()
        code = run.proc.wait(timeout=60)
        noticed = time.monotonic() - t0
        out = "".join(run.lines)
        assert code == 2 and "flwr-simulation" in out and "exited before the run finished" in out, out[-3000:]
        _, survivors = _gone_within(procs, GONE_WITHIN_S)
        assert not survivors, _describe(survivors)
        print("killed simulation noticed after", round(noticed, 1), "s")
    finally:
        _kill_all(procs)
        if run.proc.poll() is None:
            run.proc.kill()


def test_two_runs_into_one_run_dir(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The probe's case: a second `fedrai run` 2 s after the first. It is refused; the first is intact."""
    exp = tiny_experiment(tmp_path, tiny_model_dir, rounds=1)  # one round: the lock holds to the end
    run_dir = tmp_path / "run"
    first = FedraiRun(exp, run_dir)
    try:
        time.sleep(2.0)
        second = subprocess.run(
            [sys.executable, "-m", "fedrai", "run", str(exp), "--out", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "300"},
        )
        out = (second.stdout + second.stderr).strip()
        assert second.returncode == 2 and f"pid {first.proc.pid}" in out and len(out.splitlines()) == 1, out
        assert first.proc.wait(timeout=600) == 0, "".join(first.lines)[-3000:]
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["round"] for r in rows] == [0, 1]
        assert json.loads((run_dir / "summary.json").read_text())["rounds"] == 1
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
