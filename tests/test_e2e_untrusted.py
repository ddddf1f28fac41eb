"""End to end through real Flower + Ray: a malicious client is excluded and counted, the rounds complete.

`fedrai run` on a tiny random Llama, 3 clients x 1 round; client 2 skips its filter and trains on
harmful pairs (``[attack] harmful_finetune``); the server screens every update (``[screen]``,
exclude) and aggregates the two honest ones. The same experiment over two rounds runs on an
in-process grid in tests/test_update_screen.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_update_screen import screened_experiment

pytestmark = pytest.mark.slow


def test_malicious_client_excluded_in_a_ray_simulation(tiny_model_dir, tmp_path: Path):
    exp = screened_experiment(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "fedrai", "run", str(exp), "--out", str(run_dir)]
        + ["--set", "federation.num_rounds=1"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1]
    for r in rows[1:]:
        assert r["clients"] == 3 and r["failures"] == 0
        assert r["updates.rejected.screen"] == 1.0 and r["updates.accepted"] == 2.0
        assert r["clients.2.rejected"] == 1.0
