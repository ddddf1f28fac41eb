"""One writer per run dir, checked with real processes: a second writer is refused naming the holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fedrai.run_lock import RunDirBusy, read_holder, run_dir_lock

HOLD = (
    "import sys, time\n"
    "from fedrai.run_lock import run_dir_lock\n"
    "with run_dir_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(120)\n"
)


def hold_lock(run_dir: Path) -> subprocess.Popen[str]:
    """A real second process holding ``run_dir``'s lock (returns once it holds it)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_second_writer_is_refused_naming_the_holder_and_a_killed_holder_frees_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = hold_lock(run_dir)
    try:
        with pytest.raises(RunDirBusy, match=rf"pid {holder.pid} on "), run_dir_lock(run_dir):
            pass
        assert read_holder(run_dir)["pid"] == holder.pid
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies without any cleanup: a stale lock file stays
        _stop(holder)
    assert read_holder(run_dir)["pid"] == holder.pid  # the record is still there ...
    with run_dir_lock(run_dir):  # ... but the kernel dropped the lock: the next writer takes it
        assert read_holder(run_dir)["pid"] == os.getpid()
        with run_dir_lock(run_dir):  # re-entrant within one process
            pass
    assert read_holder(run_dir) == {}  # released: no holder named


def test_child_process_writes_under_its_parents_token_only(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = hold_lock(run_dir)
    try:
        token = read_holder(run_dir)["token"]
        with run_dir_lock(run_dir, token=token) as got:  # the ServerApp of `fedrai run`
            assert got == token
        with pytest.raises(RunDirBusy), run_dir_lock(run_dir, token="not-the-token"):
            pass
    finally:
        _stop(holder)


def test_fedrai_run_into_a_busy_run_dir_fails_fast_with_one_line(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from tests.test_reliability import tiny_experiment

    exp = tiny_experiment(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "run"
    holder = hold_lock(run_dir)
    try:
        for args in (["run", str(exp), "--out", str(run_dir)], ["run", "--resume", str(run_dir)]):
            if args[1] == "--resume":
                (run_dir / "config.toml").write_text(exp.read_text(), encoding="utf-8")
            proc = subprocess.run(
                [sys.executable, "-m", "fedrai", *args],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "COLUMNS": "400"},
            )
            out = (proc.stdout + proc.stderr).strip()
            assert proc.returncode == 2, out
            assert f"pid {holder.pid}" in out and "Traceback" not in out and len(out.splitlines()) == 1, out
        assert not (run_dir / "metrics.jsonl").exists() and not (run_dir / ".flwr").exists()
    finally:
        _stop(holder)
