"""End to end through real Flower + Ray: a malicious client is excluded and counted, the rounds complete.

`fedrai run` on a tiny random Llama, 3 clients x 2 rounds; client 2 skips its filter and trains on
harmful pairs (``[attack] harmful_finetune``); the server screens every update (``[screen]``,
exclude) and aggregates the two honest ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from tests.test_update_screen import benign, harmful

pytestmark = pytest.mark.slow


def test_malicious_client_excluded_in_a_ray_simulation(tiny_model_dir, tmp_path: Path):
    data = write_jsonl(tmp_path / "pairs.jsonl", [benign(i) for i in range(30)])
    bad = write_jsonl(tmp_path / "harmful.jsonl", [harmful(i) for i in range(24)])
    probe_benign = write_jsonl(tmp_path / "probe_benign.jsonl", [benign(500 + i) for i in range(6)])
    exp = tmp_path / "exp.toml"
    exp.write_text(
        f"""
name = "e2e-untrusted"
seed = 1
[model]
name_or_path = "{tiny_model_dir}"
max_seq_length = 64
[lora]
r = 4
alpha = 8
dropout = 0.0
[data]
source = "{data}"
harmful_source = "{bad}"
heldout_rows = 2
[federation]
num_clients = 3
num_rounds = 2
[train]
local_steps = 12
batch_size = 4
learning_rate = 0.03
lr_schedule = "constant"
[strategy]
min_train_clients = 3
min_available_clients = 3
[eval]
enabled = false
[screen]
enabled = true
policy = "exclude"
redteam_source = "{bad}"
redteam_probes = 6
disjoint_from_advbench = false
benign_source = "{probe_benign}"
benign_probes = 4
max_margin_drop = 0.02
reference = "round_median"
[attack]
num_malicious = 1
partitions = [2]
kind = "harmful_finetune"
""",
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "fedrai", "run", str(exp), "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2]
    for r in rows[1:]:
        assert r["clients"] == 3 and r["failures"] == 0
        assert r["updates.rejected.screen"] == 1.0 and r["updates.accepted"] == 2.0
        assert r["clients.2.rejected"] == 1.0
