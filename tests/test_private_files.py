"""Client texts and checkpoints are private by default: dirs 0700, files 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fedrai.checkpoint import Checkpoint
from fedrai.clients.pipeline import cached_guard
from fedrai.clients.worker import client_state_dir
from fedrai.run_dir import RunDir
from fedrai.safety.audit import AuditLog


@pytest.fixture(autouse=True)
def _open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: without care, files would come out 0644
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_client_state_audit_and_guarded_rows_are_owner_only(tmp_path: Path) -> None:
    state = client_state_dir({"run-dir": str(tmp_path)}, {}, 3)
    assert _mode(state) == 0o700
    AuditLog(state).write({"action": "drop", "prompt": "p", "response": "r"})
    audit = next(state.iterdir())
    assert _mode(audit) == 0o600
    rows, _ = cached_guard(state, ("k",), lambda: ([{"prompt": "p", "response": "r"}], {"kept": 1.0}))
    guarded = [p for p in state.rglob("*.json")]
    assert rows and guarded
    assert all(_mode(p) == 0o600 for p in guarded)
    assert all(_mode(p.parent) == 0o700 for p in guarded)


def test_existing_wide_files_are_narrowed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    log = AuditLog(state)
    log.path.write_text("", encoding="utf-8")
    os.chmod(log.path, 0o644)
    log.write({"action": "revise", "prompt": "p", "response": "r"})
    assert _mode(state) == 0o700 and _mode(log.path) == 0o600
    assert len(log.read()) == 1


def test_checkpoint_dir_and_files_are_owner_only(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.save_checkpoint(Checkpoint(1, {"w": torch.zeros(2)}, "fedavg"))
    assert _mode(run.checkpoint) == 0o700
    files = list(run.checkpoint.iterdir())
    assert files and all(_mode(p) == 0o600 for p in files)
