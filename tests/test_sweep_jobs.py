"""``fedrai sweep --jobs N``: cells at once, with the sequential sweep's resume, failure and status rules.

The simulation is a fake that sleeps and counts how many cells run at the same time; the real
parallel speed-up is measured by ``benchmarks/sweep_jobs.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fedrai import sweep as sw
from fedrai.checkpoint import Checkpoint
from fedrai.run_dir import RunDir
from fedrai.runtime.superlink import free_port
from tests.test_sweep import FakeSim, _fake_eval, _sweep


class SlowFake(FakeSim):
    """A fake simulation that takes a while and records the most cells running at once."""

    def __init__(self, fail: set[str] | None = None, seconds: float = 0.3) -> None:
        super().__init__(fail)
        self.seconds = seconds
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, config, run_dir, *, resume=False, on_output=None, **kw):  # noqa: ANN001, ANN003
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.seconds)
            return super().__call__(config, run_dir, resume=resume, on_output=on_output, **kw)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> SlowFake:
    fake = SlowFake()
    monkeypatch.setattr("fedrai.runtime.run_simulation", fake)
    monkeypatch.setattr("fedrai.evaluation.standalone.evaluate_model", _fake_eval)
    monkeypatch.setattr("fedrai.data.client_data.heldout_rows", lambda cfg: [])
    monkeypatch.setattr("fedrai.sweep.runner.fetch_assets", lambda cells: None)
    return fake


@pytest.mark.parametrize("jobs", [2, 3])
def test_jobs_run_cells_at_once_and_never_more(tmp_path: Path, slow: SlowFake, jobs: int) -> None:
    out = tmp_path / "out"
    outcome = sw.execute_sweep(_sweep(tmp_path), out, jobs=jobs, log=lambda _: None)
    assert slow.peak == jobs  # 8 FL cells: the pool fills up, and never beyond `jobs`
    assert sorted(outcome.ran) == sorted(c.id for c in sw.load_sweep(tmp_path / "sweep.toml", out).cells)
    status = sw.read_status(out)
    assert status["failed"] == 0 and {c["state"] for c in status["cells"].values()} == {"done"}


def test_jobs_keep_skip_resume_and_failure_semantics(tmp_path: Path, slow: SlowFake) -> None:
    path = _sweep(tmp_path)
    out = tmp_path / "out"
    plan = sw.load_sweep(path, out)
    by_id = {c.id: c for c in plan.cells}
    done, ckpt = by_id["fl__fedavg__seed0"], by_id["fl__fedavg__seed1"]
    for cell in (done, ckpt):
        cell.run_dir.mkdir(parents=True)
        cell.run_dir.joinpath("config.toml").write_text(cell.config.to_toml(), encoding="utf-8")
    RunDir(done.run_dir).write_summary({"name": done.id, "strategy": "fedavg", "rounds": 1})
    RunDir(ckpt.run_dir).save_checkpoint(Checkpoint(1, {}, "fedavg"))
    slow.fail = {"fl__scaffold__seed1"}

    lines: list[str] = []
    outcome = sw.execute_sweep(path, out, jobs=2, log=lines.append)
    calls = dict(slow.calls)
    assert done.id not in calls and calls[ckpt.id] is True
    assert outcome.skipped == [done.id] and outcome.failed == ["fl__scaffold__seed1"]
    assert len(outcome.ran) == 7  # 8 cells with the base model, minus the done and the failed one
    status = sw.read_status(out)
    assert status["failed"] == 1 and status["cells"]["fl__scaffold__seed1"]["state"] == "failed"
    assert "boom in fl__scaffold__seed1" in status["cells"]["fl__scaffold__seed1"]["error"]
    assert any("2 at once" in line for line in lines)
    assert outcome.report is not None and outcome.report.is_file()
    # A rerun retries the failed cell only, in parallel mode as in sequential mode.
    slow.fail, slow.calls = set(), []
    again = sw.execute_sweep(path, out, jobs=2, log=lambda _: None)
    assert [n for n, _ in slow.calls] == ["fl__scaffold__seed1"] and again.ran == ["fl__scaffold__seed1"]
    assert sw.read_status(out)["failed"] == 0


def test_status_file_survives_concurrent_updates(tmp_path: Path) -> None:
    plan = sw.load_sweep(_sweep(tmp_path), tmp_path / "out")
    status = sw.StatusFile(tmp_path / "out", plan)

    def hammer(cell: sw.Cell) -> None:
        for i in range(30):
            status.update(cell, state="running", step=i)

    threads = [threading.Thread(target=hammer, args=(c,)) for c in plan.cells]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = sw.read_status(tmp_path / "out")  # valid JSON with every cell's last update
    assert {c["step"] for c in data["cells"].values()} == {29}
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(sw.SweepError, match="--jobs"):
        sw.execute_sweep(_sweep(tmp_path), tmp_path / "out", jobs=0)


def test_free_port_never_hands_out_a_port_twice() -> None:
    ports: list[int] = []
    threads = [
        threading.Thread(target=lambda: ports.extend(free_port() for _ in range(20))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ports) == 80 and len(set(ports)) == 80
