"""The server's acceptance gate: unit rules, and the round loop keeping the previous adapter."""

from __future__ import annotations

import json

import pytest
import torch

from fedrai.config import ConfigError, ExperimentConfig
from fedrai.evaluation.gate import AcceptanceGate
from fedrai.model import get_adapter_state
from fedrai.run_dir import RunDir
from tests.test_rounds import make_config, run


def test_gate_accepts_within_bounds_and_rejects_over_refusal_or_loss():
    gate = AcceptanceGate(max_benign_refusal_increase=0.10, max_heldout_loss_increase=0.05)
    gate.accept_baseline({"benign.refusal_rate": 0.05, "heldout.loss": 2.0})
    assert gate.judge({"benign.refusal_rate": 0.15, "heldout.loss": 2.09}).accepted  # both at the edge
    over = gate.judge({"benign.refusal_rate": 0.30, "heldout.loss": 1.9})
    assert not over.accepted and "benign refusal" in over.reasons[0]
    worse = gate.judge({"benign.refusal_rate": 0.0, "heldout.loss": 2.2})
    assert not worse.accepted and "held-out loss" in worse.reasons[0]
    assert not gate.judge({"benign.refusal_rate": 0.0, "heldout.loss": float("nan")}).accepted
    # The best accepted values only move down: a good round tightens the bounds.
    assert gate.judge({"benign.refusal_rate": 0.0, "heldout.loss": 1.8}).accepted
    assert gate.best_benign_refusal == 0.0 and gate.best_heldout_loss == 1.8
    assert not gate.judge({"benign.refusal_rate": 0.15, "heldout.loss": 1.8}).accepted
    assert gate.rejected_rounds == 4

    restored = AcceptanceGate()
    restored.load_state(json.loads(json.dumps(gate.state())))
    assert restored.state() == gate.state()


def test_gate_is_on_for_guarded_settings_and_needs_evaluation():
    assert not ExperimentConfig().gate_enabled()
    assert ExperimentConfig.from_dict({"safety": {"enabled": True}}).gate_enabled()
    assert ExperimentConfig.from_dict({"cai": {"placement": "server"}}).gate_enabled()
    assert not ExperimentConfig.from_dict(
        {"safety": {"enabled": True}, "gate": {"enabled": False}}
    ).gate_enabled()
    assert not ExperimentConfig.from_dict(
        {"safety": {"enabled": True}, "eval": {"enabled": False}}
    ).gate_enabled()
    with pytest.raises(ConfigError, match="gate.enabled"):
        ExperimentConfig.from_dict({"gate": {"enabled": True}, "eval": {"enabled": False}})


class ScriptedEvaluator:
    """Per-round metrics from a script; remembers the adapter it was shown each round."""

    def __init__(self, script: dict[int, dict[str, float]]) -> None:
        self.script = script
        self.seen: dict[int, dict[str, torch.Tensor]] = {}

    def evaluate(self, model, server_round: int, final: bool = False) -> dict[str, float]:
        if final:
            return {"final.benign.refusal_rate": self.script[server_round]["benign.refusal_rate"]}
        self.seen[server_round] = {k: v.clone() for k, v in get_adapter_state(model).items()}
        return dict(self.script[server_round])


@pytest.mark.parametrize("gated", [True, False])
def test_round_loop_keeps_the_previous_adapter_when_the_gate_rejects(
    tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch, gated
):
    script = {
        0: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0, "advbench.refusal_rate": 0.1},
        1: {"benign.refusal_rate": 0.5, "heldout.loss": 2.0, "advbench.refusal_rate": 0.9},  # over-refuses
        2: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0, "advbench.refusal_rate": 0.2},
    }
    evaluator = ScriptedEvaluator(script)
    monkeypatch.setattr("fedrai.rounds._build_evaluator", lambda cfg, tok: evaluator)
    cfg = make_config(
        tiny_model_dir,
        pairs_jsonl,
        tmp_path / "run",
        "eval.enabled=true",
        f"gate.enabled={'true' if gated else 'false'}",
        "output.save_every_round=true",
    )
    run(cfg)
    rd = RunDir(tmp_path / "run")
    rows = rd.read_metrics()
    summary = json.loads(rd.summary.read_text())
    kept = rd.adapter(1)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    round1 = get_adapter_state(
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(kept))
    )
    same_as_start = all(torch.equal(round1[k], evaluator.seen[0][k]) for k in round1)
    if gated:
        assert [r["gate.rejected"] for r in rows[1:]] == [1.0, 0.0]
        # Round 1's row reports the model the server kept, and what it refused beside it.
        assert rows[1]["benign.refusal_rate"] == 0.0 and rows[1]["advbench.refusal_rate"] == 0.1
        assert rows[1]["candidate.benign.refusal_rate"] == 0.5
        assert same_as_start  # the global adapter after round 1 is round 0's
        assert summary["gated_rounds"] == 1
    else:
        assert "gate.rejected" not in rows[1]
        assert rows[1]["benign.refusal_rate"] == 0.5
        assert not same_as_start
        assert summary["gated_rounds"] == 0


def test_a_resumed_run_gates_like_an_uninterrupted_one(tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch):
    from tests.inprocess import SimulatedCrash

    script = {
        0: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0},
        1: {"benign.refusal_rate": 0.0, "heldout.loss": 1.5},  # accepted: the best loss drops to 1.5
        2: {"benign.refusal_rate": 0.0, "heldout.loss": 1.55},  # within 5% of 1.5: accepted
        3: {
            "benign.refusal_rate": 0.0,
            "heldout.loss": 1.6,
        },  # > 1.5 x 1.05 but < 1.55 x 1.05: needs the best
    }
    monkeypatch.setattr("fedrai.rounds._build_evaluator", lambda cfg, tok: ScriptedEvaluator(script))
    over = ["eval.enabled=true", "gate.enabled=true", "federation.num_rounds=3"]
    full = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "full", *over)
    run(full)
    part = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "part", *over)
    with pytest.raises(SimulatedCrash):
        run(part, crash_at_round=3)
    run(part, resume=True)
    expected = [r["gate.rejected"] for r in RunDir(tmp_path / "full").read_metrics()[1:]]
    assert expected == [0.0, 0.0, 1.0]
    assert [r["gate.rejected"] for r in RunDir(tmp_path / "part").read_metrics()[1:]] == expected


def test_a_refused_round_is_undone_in_the_strategy_state_too(
    tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch
):
    """The round driver restores FedAvgM's and SCAFFOLD's state when the gate refuses a round."""
    import numpy as np

    from fedrai.strategies.scaffold import ClientControlStore

    script = {
        0: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0},
        1: {"benign.refusal_rate": 0.9, "heldout.loss": 2.0},  # refused
        2: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0},
    }
    monkeypatch.setattr("fedrai.rounds._build_evaluator", lambda cfg, tok: ScriptedEvaluator(script))
    over = ["eval.enabled=true", "gate.enabled=true", "federation.num_rounds=1"]
    for name in ("fedavgm", "scaffold"):
        cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / name, f"strategy.name={name}", *over)
        run(cfg)
        ckpt = RunDir(tmp_path / name).load_checkpoint()
        if name == "fedavgm":  # no momentum from the refused round; the next step starts at round 0's adapter
            assert set(ckpt.strategy.tensors) == {"current_arrays"}
            start = ckpt.strategy.tensors["current_arrays"]
            assert all(np.array_equal(start[k], ckpt.adapter[k].numpy()) for k in ckpt.adapter)
        else:
            assert ckpt.strategy.scalars["rejected_rounds"] == [1]
            assert all(not c.any() for c in ckpt.strategy.tensors["server_control"].values())

    # SCAFFOLD, one more (accepted) round: clients forget their refused c_i, and c = mean(c_i) holds
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "scaffold2", "strategy.name=scaffold", *over)
    cfg.federation.num_rounds = 2
    run(cfg)
    c = RunDir(tmp_path / "scaffold2").load_checkpoint().strategy.tensors["server_control"]
    controls = []
    for i in range(3):
        store = ClientControlStore(tmp_path / "scaffold2" / "clients" / f"client-{i}")
        assert store.rounds() == [2]
        controls.append(store.load_before(3, {k: torch.zeros(1) for k in c}))
    for k, v in c.items():
        mean = sum(ci[k] for ci in controls) / 3
        assert mean.abs().max() > 0
        np.testing.assert_allclose(v, mean.numpy(), rtol=1e-4, atol=1e-6)
