"""The server round loop and the ClientApp together, in-process (no Ray): fast and exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from fedrai.client_app import app as client_app
from fedrai.config import ExperimentConfig
from fedrai.rounds import run_rounds
from fedrai.run_dir import RunDir
from tests.inprocess import InProcessGrid, SimulatedCrash


def make_config(tiny_model_dir, data_path, run_dir, *overrides: str) -> ExperimentConfig:
    text = f"""
name = "inprocess"
seed = 1
[model]
name_or_path = "{tiny_model_dir}"
max_seq_length = 64
[lora]
r = 4
alpha = 8
dropout = 0.0
[data]
source = "{data_path}"
heldout_rows = 4
[federation]
num_clients = 3
num_rounds = 2
[train]
local_steps = 2
batch_size = 2
learning_rate = 0.01
[strategy]
min_train_clients = 2
min_available_clients = 3
[eval]
enabled = false
[output]
dir = "{run_dir}"
"""
    path = Path(run_dir).with_suffix(".toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return ExperimentConfig.from_toml(path, list(overrides))


def run(cfg: ExperimentConfig, *, fail_nodes=(), resume=False, crash_at_round=0) -> InProcessGrid:
    run_config = {"config-toml": cfg.to_toml(), "run-dir": cfg.output.dir}
    grid = InProcessGrid(client_app, cfg.federation.num_clients, run_config, fail_nodes, crash_at_round)
    run_rounds(grid, cfg, RunDir(cfg.output.dir).path, resume=resume)
    return grid


def test_rounds_write_metrics_adapters_and_summary(tiny_model_dir, pairs_jsonl, tmp_path):
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run")
    run(cfg)
    rd = RunDir(tmp_path / "run")
    rows = rd.read_metrics()
    assert [r["round"] for r in rows] == [0, 1, 2]
    for r in rows[1:]:
        for key in ("train_loss", "clients", "failures", "bytes_up", "bytes_down", "seconds"):
            assert key in r, key
        assert r["clients"] == 3 and r["failures"] == 0
        assert r["bytes_up"] > 0 and r["bytes_down"] == r["bytes_up"]  # fp32 both ways, same tensors
    summary = json.loads(rd.summary.read_text())
    assert summary["rounds"] == 2 and 0 < summary["adapter_share_of_model"] < 1
    assert summary["schema_version"] == 1 and summary["fedrai_version"]
    assert (tmp_path / "run" / "config.toml").is_file()
    # the saved adapter reloads with peft and gives the server's model
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    reloaded = PeftModel.from_pretrained(base, str(rd.adapter(2)))
    ckpt = rd.load_checkpoint()
    adapter = ckpt.adapter
    assert ckpt.round == 2
    from fedrai.model import get_adapter_state

    got = get_adapter_state(reloaded)
    assert all(torch.allclose(got[k], adapter[k]) for k in adapter)


def test_a_failing_client_is_counted_not_fatal(tiny_model_dir, pairs_jsonl, tmp_path):
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run")
    run(cfg, fail_nodes=[2])
    rows = RunDir(tmp_path / "run").read_metrics()
    assert [r["failures"] for r in rows[1:]] == [1, 1]
    assert [r["clients"] for r in rows[1:]] == [2, 2]


@pytest.mark.parametrize("strategy", ["fedavg", "fedadam", "fedavgm"])
def test_resume_ends_with_the_same_adapter(tiny_model_dir, pairs_jsonl, tmp_path, strategy):
    over = [f"strategy.name={strategy}", "federation.num_rounds=3", "strategy.server_learning_rate=0.05"]
    full = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "full", *over)
    run(full)
    part = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "part", *over)
    with pytest.raises(SimulatedCrash):
        run(part, crash_at_round=3)
    assert RunDir(tmp_path / "part").load_checkpoint().round == 2
    run(part, resume=True)
    full_ckpt = RunDir(tmp_path / "full").load_checkpoint()
    part_ckpt = RunDir(tmp_path / "part").load_checkpoint()
    a, b = full_ckpt.adapter, part_ckpt.adapter
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # the strategy's own state (momentum, moments) went through the checkpoint and on alike
    sa, sb = full_ckpt.strategy.tensors, part_ckpt.strategy.tensors
    assert (
        set(sa)
        == set(sb)
        == {
            "fedavg": set(),
            "fedadam": {"current_arrays", "m_t", "v_t"},
            "fedavgm": {"current_arrays", "momentum_vector"},
        }[strategy]
    )
    for group in sa:
        assert all(np.allclose(sa[group][k], sb[group][k], atol=1e-6) for k in sa[group])
    assert [r["round"] for r in RunDir(tmp_path / "part").read_metrics()] == [0, 1, 2, 3]


def test_every_strategy_aggregates_adapters(tiny_model_dir, pairs_jsonl, tmp_path):
    """A real round per strategy: the new global adapter differs from the one sent and equals the
    strategy's rule (tests/strategy_rules.py) applied to what the clients actually sent back."""
    from fedrai.strategies import STRATEGY_NAMES
    from fedrai.transport import from_arrays
    from tests.strategy_rules import expected_aggregate

    for name in STRATEGY_NAMES:
        cfg = make_config(
            tiny_model_dir, pairs_jsonl, tmp_path / name, f"strategy.name={name}", "federation.num_rounds=1"
        )
        run_config = {"config-toml": cfg.to_toml(), "run-dir": cfg.output.dir}
        grid = InProcessGrid(client_app, cfg.federation.num_clients, run_config)
        sent: list = []  # (adapter sent, [(adapter back, examples)]), copied before the strategy reads them
        send = grid.send_and_receive

        def arrays_of(message):
            return {k: v.numpy().copy() for k, v in from_arrays(message.content["arrays"]).items()}

        def recording(messages, *, timeout=None, send=send, sent=sent):
            messages = list(messages)
            replies = list(send(messages, timeout=timeout))
            back = [
                (arrays_of(m), int(m.content["metrics"]["num-examples"]))
                for m in replies
                if not m.has_error()
            ]
            sent.append((arrays_of(messages[0]), back))
            return replies

        grid.send_and_receive = recording
        run_rounds(grid, cfg, RunDir(cfg.output.dir).path)
        rows = RunDir(tmp_path / name).read_metrics()
        assert rows[-1]["clients"] == 3, name

        ((x, back),) = sent  # one round
        clients, weights = [c for c, _ in back], [n for _, n in back]
        want = expected_aggregate(name, cfg.strategy, x, clients, weights)
        got = {k: v.numpy() for k, v in RunDir(tmp_path / name).load_checkpoint().adapter.items()}
        assert set(got) == set(x), name
        assert any(not np.allclose(got[k], x[k]) for k in x), f"{name}: the adapter did not change"
        for k in x:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6, err_msg=f"{name}: {k}")


def test_guard_counts_reach_the_server_but_no_client_text(tiny_model_dir, tmp_path, monkeypatch):
    """Filter on: per-round counts arrive; no text of the client's rows is in any reply; the
    client's audit keeps the filtered rows with their original text (nothing is lost).

    The filter is a deterministic keyword judge here: this test is about the plumbing; the
    embedded filter's quality has its own tests and benchmark."""
    from fedrai.safety.filters.base import Verdict

    class KeywordJudge:
        def score(self, prompts, responses=None):
            return [
                Verdict(unsafe_prob=float("bomb" in (r or "")), category="S9", categories=("S9",))
                for r in responses
            ]

    monkeypatch.setattr("fedrai.safety.filters.build_filter", lambda cfg: KeywordJudge())
    from fedrai.data.client_data import client_rows
    from tests.conftest import write_jsonl

    harmful = "Sure, here is how to build a pipe bomb: pack the pipe with powder and add a fuse. SECRET-HARM"
    rows = [
        {"prompt": f"How do I bake loaf {i}?", "response": f"Knead and bake. SECRET-BENIGN-{i}"}
        for i in range(18)
    ]
    rows += [{"prompt": "How do I build a pipe bomb?", "response": harmful}] * 6
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    cfg = make_config(
        tiny_model_dir, data, tmp_path / "run", "safety.enabled=true", "federation.num_rounds=1"
    )
    grid = run(cfg)

    row = RunDir(tmp_path / "run").read_metrics()[-1]
    assert row["safety.scored"] == row["data.rows"] > 0
    harmful_rows = sum(1 for pid in range(3) for r in client_rows(cfg, pid) if "bomb" in r["response"])
    assert row["safety.flagged"] == row["safety.dropped"] == harmful_rows > 0
    assert row["safety.category.S9"] == harmful_rows
    assert row["data.trained_rows"] == row["data.rows"] - row["safety.dropped"]

    def texts(message) -> str:
        content = message.content
        parts = [str(dict(r)) for r in content.metric_records.values()]
        parts += [str(dict(r)) for r in content.config_records.values()]
        parts += [" ".join(r.keys()) for r in content.array_records.values()]
        return " ".join(parts)

    seen = " ".join(texts(m) for m in grid.received)
    assert "safety.flagged" in seen
    assert "SECRET" not in seen and "pipe" not in seen and "bake" not in seen

    audits = list((tmp_path / "run" / "clients").glob("client-*/safety_audit.jsonl"))
    assert audits
    audit_text = "".join(a.read_text() for a in audits)
    assert "SECRET-HARM" in audit_text  # what was dropped is kept locally, with its reason


def test_a_deployed_site_reads_its_own_file_and_keeps_state_where_it_says(
    tiny_model_dir, pairs_jsonl, tmp_path
):
    """Real SuperNodes pass `data-path` and `state-dir` in their node config."""
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run", "federation.num_rounds=1")
    site_file = tmp_path / "site.jsonl"
    site_file.write_text(
        '{"prompt": "Only at this site?", "response": "Yes, only here."}\n' * 5, encoding="utf-8"
    )
    grid = InProcessGrid(client_app, 3, {"config-toml": cfg.to_toml(), "run-dir": str(tmp_path / "run")})
    grid.contexts[1].node_config.update(
        {"data-path": str(site_file), "state-dir": str(tmp_path / "site-state")}
    )
    run_rounds(grid, cfg, tmp_path / "run")
    rows = RunDir(tmp_path / "run").read_metrics()
    assert rows[-1]["clients"] == 3 and rows[-1]["failures"] == 0
    from fedrai.data.client_data import client_rows

    shared = len(client_rows(cfg, 1)) + len(client_rows(cfg, 2))
    assert rows[-1]["data.rows"] == 5 + shared  # the site's own 5 rows + the two simulated partitions
    assert (tmp_path / "site-state").is_dir()
    assert not (tmp_path / "run" / "clients" / "client-0").exists()


def test_client_round_with_the_cross_encoder_backend(tiny_model_dir, tmp_path):
    """The client path with a real (tiny, trained here) cross-encoder: rows scored, counts reported."""
    from fedrai.safety.labelled import Example
    from fedrai.safety.train_cross import train_cross_encoder
    from tests.conftest import write_jsonl
    from tests.tiny import build_tiny_bert

    bert = build_tiny_bert(tmp_path / "bert")
    ex = [
        Example(
            f"q{i}",
            "a pipe bomb" if i % 2 else "bake bread",
            i % 2,
            "x",
            "train" if i % 4 else "val",
            f"s:{i}",
        )
        for i in range(16)
    ]
    train_cross_encoder(tmp_path / "ce", ex, base=str(bert), max_length=32, log=lambda m: None)
    rows = [{"prompt": f"How do I bake loaf {i}?", "response": f"Knead and bake {i}."} for i in range(12)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = make_config(
        tiny_model_dir,
        data,
        tmp_path / "run",
        "safety.enabled=true",
        'safety.backend="cross_encoder"',
        f'safety.head_path="{tmp_path / "ce"}"',
        "safety.threshold=1.0",  # plumbing only: a random tiny encoder's scores mean nothing
        "federation.num_rounds=1",
    )
    run(cfg)
    row = RunDir(tmp_path / "run").read_metrics()[-1]
    assert row["safety.scored"] == row["data.rows"] > 0
    assert row["data.trained_rows"] == row["data.rows"] - row["safety.dropped"]
