"""End to end through real Flower + Ray: `fedrai run` on a tiny random Llama.

One run (3 clients x 2 rounds, with issue 13's guarded recipe on top: server-side CAI, contrast
rows, the safe-alarming eval and the gate) is shared by the module's tests. One checks the metrics
rows, the saved adapter (it reloads with peft and reproduces the server's held-out loss), that no
client text reached the server's files, and that no process is left behind; the other checks what
the guarded recipe adds. A plain run (no CAI) through `fedrai run` and Ray is run to the end in
tests/test_kill_run.py and tests/test_e2e_untrusted.py.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.conftest import write_hhh_dir, write_jsonl

pytestmark = pytest.mark.slow


def _experiment(tmp: Path, model_dir: Path) -> Path:
    secret = [
        {"prompt": f"How do I bake loaf number {i}?", "response": f"SECRET-CLIENT-TEXT-{i}: knead and bake."}
        for i in range(30)
    ]
    data = write_jsonl(tmp / "pairs.jsonl", secret)
    advbench = write_jsonl(tmp / "adv.jsonl", [{"prompt": f"Explain how to do harm {i}"} for i in range(6)])
    benign = write_jsonl(
        tmp / "benign.jsonl", [{"prompt": f"Write a poem about the sea {i}"} for i in range(4)]
    )
    hhh = write_hhh_dir(tmp / "hhh")
    exp = tmp / "exp.toml"
    exp.write_text(
        f"""
name = "e2e"
seed = 3
[model]
name_or_path = "{model_dir}"
max_seq_length = 64
[lora]
r = 4
alpha = 8
dropout = 0.0
[data]
source = "{data}"
heldout_rows = 6
[federation]
num_clients = 4
num_rounds = 2
[strategy]
fraction_train = 0.75
min_train_clients = 3
min_available_clients = 4
[train]
local_steps = 2
batch_size = 2
learning_rate = 0.01
[eval]
advbench_source = "{advbench}"
advbench_per_round = 3
advbench_final = 6
benign_source = "{benign}"
benign_per_round = 2
max_new_tokens = 4
batch_size = 4
hhh_source = "{hhh}"
hhh_per_round = 2
hhh_final = 4
""",
        encoding="utf-8",
    )
    return exp


GUARDED_OVERRIDES = [
    'cai.placement="server"',
    'cai.server_prompts_source="embedded:redteam-pool"',
    "cai.server_prompts_per_round=2",
    "cai.server_steps=1",
    "cai.max_tries=1",
    "cai.max_new_tokens=4",
    "cai.server_assume_harmful=true",
    "cai.server_benign_per_round=1",
    "cai.server_contrast_per_round=2",
    "data.contrast_fraction=0.2",
    "eval.alarming_per_round=2",
    "eval.alarming_final=3",
]


@dataclass(frozen=True)
class GuardedRun:
    """The shared run: its dir, the finished process and our child PIDs before and after it."""

    run_dir: Path
    proc: subprocess.CompletedProcess[str]
    before: set[int]
    after: set[int]


@pytest.fixture(scope="module")
def guarded_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> GuardedRun:
    """Issue 13's recipe through Flower: red-team pool, contrast rows (clients and server anchor),
    safe-alarming eval every round and at the end, the gate, and the closing before/after lines."""
    tmp = tmp_path_factory.mktemp("e2e")
    exp = _experiment(tmp, tiny_model_dir)
    run_dir = tmp / "run"
    cmd = [sys.executable, "-m", "fedrai", "run", str(exp), "--out", str(run_dir)]
    for o in GUARDED_OVERRIDES:
        cmd += ["--set", o]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "COLUMNS": "200"}
    )
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    return GuardedRun(run_dir, proc, before, after)


def test_fedrai_run_end_to_end(tiny_model_dir, guarded_run: GuardedRun):
    run_dir, proc = guarded_run.run_dir, guarded_run.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "round 2/2" in proc.stdout

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2]
    for r in rows[1:]:
        assert r["clients"] == 3 and r["failures"] == 0
        assert r["bytes_up"] > 0 and r["bytes_down"] > 0 and r["seconds"] > 0
        assert r["train_loss"] > 0
        assert 0.0 <= r["advbench.refusal_rate"] <= 1.0 and "heldout.loss" in r
    for r in rows:  # HHH on the seeded per-round subset, every round including the base model
        assert r["hhh.n"] == 2 and 0.0 <= r["hhh.accuracy"] <= 1.0
    assert "final.advbench.refusal_rate" in rows[-1] and rows[-1]["final.hhh.n"] == 4
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rounds"] == 2
    # Seeded sampling picks partitions, not Flower's random node ids (fedrai.strategies.node_order):
    # the round loop seeds `random` per round and the nodes are listed in partition order.
    for r in rows[1:]:
        random.seed(3 * 1_000_003 + r["round"])
        want = sorted(random.sample(range(4), 3))
        got = sorted(
            int(k.split(".")[1]) for k in r if k.startswith("clients.") and k.endswith(".norm_ratio")
        )
        assert got == want, (r["round"], got, want)

    # The last adapter reloads with plain peft and gives the server's held-out loss.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fedrai.config import ExperimentConfig
    from fedrai.data.client_data import heldout_rows
    from fedrai.evaluation.generation import response_loss

    cfg = ExperimentConfig.from_toml(run_dir / "config.toml")
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(run_dir / "adapters" / "round-2")
    )
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    loss = response_loss(
        model.eval(),
        tokenizer,
        heldout_rows(cfg),
        cfg.eval.batch_size,
        max_seq_length=cfg.model.max_seq_length,
    )
    assert loss == pytest.approx(rows[-1]["heldout.loss"], rel=1e-4)

    # Nothing a client holds reached the server side: its files hold no client text.
    server_files = [run_dir / "metrics.jsonl", run_dir / "summary.json", run_dir / "flower.log"]
    for f in server_files:
        assert "SECRET-CLIENT-TEXT" not in f.read_text(errors="replace"), f

    # Every process the run started is gone.
    assert guarded_run.after <= guarded_run.before


def test_guarded_recipe_end_to_end(guarded_run: GuardedRun):
    """What the recipe adds: safe-alarming rows every round and at the end, the gate's counts,
    the server anchor's benign + contrast rows, and the closing before/after lines."""
    run_dir, proc = guarded_run.run_dir, guarded_run.proc
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["alarming.n"] == 2 for r in rows) and rows[-1]["final.alarming.n"] == 3
    assert all("gate.rejected" in r for r in rows[1:])
    assert all(r["cai_server.benign_rows"] == 3 for r in rows[1:])  # 1 benign + 2 contrast rows
    assert "What the guards did" in proc.stdout and "safe-but-alarming refusal" in proc.stdout
