"""The server's acceptance gate: unit rules, and the round loop keeping the candidate, the clients'
aggregate without the server's step, or the previous adapter."""

from __future__ import annotations

import json

import pytest
import torch

from fedrai.config import ConfigError, ExperimentConfig
from fedrai.evaluation.gate import AcceptanceGate, GateChoice
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

    def final_is_round(self) -> bool:
        return False


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


BASE = {"benign.refusal_rate": 0.0, "heldout.loss": 2.0, "alarming.refusal_rate": 0.0}
OVER = {
    "benign.refusal_rate": 0.0,
    "heldout.loss": 2.0,
    "alarming.refusal_rate": 0.5,
    "advbench.refusal_rate": 0.9,
}
FINE = {
    "benign.refusal_rate": 0.0,
    "heldout.loss": 1.9,
    "alarming.refusal_rate": 0.0,
    "advbench.refusal_rate": 0.2,
}


def choose(candidate, aggregate):
    """Run the gate's choice from round 0 = BASE; count how often the aggregate was evaluated."""
    gate = AcceptanceGate()
    gate.accept_baseline(BASE)
    calls = []

    def evaluate_aggregate():
        calls.append(1)
        return dict(aggregate)

    return gate, gate.choose(candidate, evaluate_aggregate if aggregate is not None else None), len(calls)


def test_an_accepted_candidate_needs_no_second_evaluation():
    gate, choice, calls = choose(FINE, OVER)
    assert choice.kept == "candidate" and choice.scores == FINE and calls == 0
    assert choice.metrics() == {"gate.rejected": 0.0, "gate.kept": "candidate"}
    assert gate.best_heldout_loss == 1.9 and gate.rejected_rounds == 0


def test_a_refused_candidate_falls_back_to_the_clients_aggregate():
    gate, choice, calls = choose(OVER, FINE)
    assert choice.kept == "aggregate" and choice.scores == FINE and calls == 1
    metrics = choice.metrics()
    assert metrics["gate.rejected"] == 1.0 and metrics["gate.kept"] == "aggregate"
    assert metrics["candidate.alarming.refusal_rate"] == 0.5 and "aggregate.heldout.loss" not in metrics
    assert "safe-alarming refusal" in choice.reasons[0] and choice.reasons[0].startswith("candidate:")
    # The aggregate is now the accepted reference; the round counts once as refused.
    assert gate.accepted_eval == FINE and gate.best_heldout_loss == 1.9 and gate.rejected_rounds == 1


def test_the_previous_adapter_is_kept_when_the_aggregate_fails_too():
    worse = {**FINE, "heldout.loss": 2.5}
    gate, choice, calls = choose(OVER, worse)
    assert choice.kept == "previous" and choice.scores == BASE and calls == 1
    metrics = choice.metrics()
    assert metrics["aggregate.heldout.loss"] == 2.5 and metrics["candidate.advbench.refusal_rate"] == 0.9
    assert [which for which, _, _ in choice.refused] == ["candidate", "aggregate"]
    assert gate.rejected_rounds == 1 and gate.accepted_eval == BASE
    # Without a server step there is no aggregate to fall back to: the previous adapter at once.
    gate, choice, calls = choose(OVER, None)
    assert choice == GateChoice("previous", BASE, choice.refused) and calls == 0


class SequenceEvaluator:
    """Scores from a list, one per call in order; remembers the adapter it was shown at each call."""

    def __init__(self, script: list[dict[str, float]]) -> None:
        self.script = list(script)
        self.seen: list[dict[str, torch.Tensor]] = []

    def evaluate(self, model, server_round: int, final: bool = False) -> dict[str, float]:
        if final:
            return {}
        self.seen.append({k: v.clone() for k, v in get_adapter_state(model).items()})
        return dict(self.script[len(self.seen) - 1])

    def final_is_round(self) -> bool:
        return False


class ShiftingServerCAI:
    """Server CAI stand-in: moves every adapter tensor by 0.5 a step for ``steps`` steps, so the candidate
    differs from the aggregate, and keeps the adapter after the steps in ``keep_at`` as the real one does."""

    def __init__(self, steps: int = 1) -> None:
        self.steps, self.points = steps, []

    def run_round(self, model, server_round: int, *, keep_at=()) -> dict[str, float]:
        for step in range(1, self.steps + 1):
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if "lora_" in name:
                        p.add_(0.5)
            if step in keep_at:
                self.points.append((step, get_adapter_state(model)))
        return {"cai.rows": 2.0}

    def take_points(self):
        points, self.points = sorted(self.points, key=lambda p: -p[0]), []
        return points


@pytest.mark.parametrize(
    ("fallback", "aggregate", "kept"),
    [
        ("aggregate", FINE, "aggregate"),
        ("aggregate", {**FINE, "heldout.loss": 2.5}, "previous"),
        ("previous", None, "previous"),
    ],
)
def test_round_loop_keeps_what_the_gate_chose(
    tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch, fallback, aggregate, kept
):
    script = [BASE, OVER] + ([aggregate] if aggregate is not None else [])
    evaluator = SequenceEvaluator(script)
    monkeypatch.setattr("fedrai.rounds._build_evaluator", lambda cfg, tok: evaluator)
    monkeypatch.setattr("fedrai.rounds._build_server_cai", lambda cfg, tok, run: ShiftingServerCAI())
    over = ["eval.enabled=true", "gate.enabled=true", f"gate.fallback={fallback}", "federation.num_rounds=1"]
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run", "strategy.name=fedavgm", *over)
    run(cfg)
    rd = RunDir(tmp_path / "run")
    row = rd.read_metrics()[1]
    assert len(evaluator.seen) == len(script)  # the aggregate was evaluated only with the fallback on
    assert row["gate.kept"] == kept and row["gate.rejected"] == 1.0
    assert row["candidate.alarming.refusal_rate"] == 0.5
    ckpt = rd.load_checkpoint()
    start, candidate = evaluator.seen[0], evaluator.seen[1]
    expected = evaluator.seen[2] if kept == "aggregate" else start
    assert all(torch.equal(ckpt.adapter[k], expected[k].to(ckpt.adapter[k].dtype)) for k in expected)
    assert not all(torch.equal(expected[k], candidate[k]) for k in expected)  # not the server-tuned one
    if kept == "aggregate":
        assert row["heldout.loss"] == 1.9  # the row reports the kept adapter
        assert not all(torch.equal(expected[k], start[k]) for k in expected)  # the clients' round stands
        # FedAvgM's momentum is the clients' step: its next round starts from the aggregate.
        current = ckpt.strategy.tensors["current_arrays"]
        assert all(torch.equal(torch.as_tensor(current[k]), expected[k].to(torch.float32)) for k in expected)
    else:
        assert row["heldout.loss"] == 2.0 and set(ckpt.strategy.tensors) == {"current_arrays"}
    summary = json.loads(rd.summary.read_text())
    assert summary["gate_kept"] == {
        "candidate": 0,
        "partial": 0,
        "aggregate": int(kept == "aggregate"),
        "previous": int(kept == "previous"),
    }


def test_round_loop_keeps_the_latest_passing_point_along_the_server_step(
    tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch
):
    # 4 server steps, points after 1, 2 and 3: the full step and the point at 3 over-refuse, the point at
    # 2 passes (the point at 1 and the aggregate are never evaluated).
    evaluator = SequenceEvaluator([BASE, OVER, OVER, FINE])
    server_cai = ShiftingServerCAI(steps=4)
    monkeypatch.setattr("fedrai.rounds._build_evaluator", lambda cfg, tok: evaluator)
    monkeypatch.setattr("fedrai.rounds._build_server_cai", lambda cfg, tok, run: server_cai)
    over = [
        "eval.enabled=true",
        "gate.enabled=true",
        "gate.server_step_points=4",
        "cai.placement=server",
        "cai.objective=sft",
        "cai.server_steps=4",
        "federation.num_rounds=1",
    ]
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run", "strategy.name=fedavgm", *over)
    run(cfg)
    rd = RunDir(tmp_path / "run")
    row = rd.read_metrics()[1]
    assert len(evaluator.seen) == 4
    assert row["gate.kept"] == "partial" and row["gate.kept_steps"] == 2.0 and row["gate.rejected"] == 1.0
    assert row["partial3.alarming.refusal_rate"] == 0.5 and "partial1.heldout.loss" not in row
    assert row["heldout.loss"] == 1.9  # the row reports the kept point
    full, three, two = evaluator.seen[1], evaluator.seen[2], evaluator.seen[3]
    key = next(iter(two))
    assert torch.allclose(full[key] - two[key], torch.full_like(two[key], 1.0), atol=1e-2)  # 2 steps back
    assert torch.allclose(three[key] - two[key], torch.full_like(two[key], 0.5), atol=1e-2)
    ckpt = rd.load_checkpoint()
    assert all(torch.equal(ckpt.adapter[k], two[k].to(ckpt.adapter[k].dtype)) for k in two)
    current = ckpt.strategy.tensors["current_arrays"]  # FedAvgM re-based on the kept point
    assert all(torch.equal(torch.as_tensor(current[k]), two[k].to(torch.float32)) for k in two)
    assert json.loads(rd.summary.read_text())["gate_kept"]["partial"] == 1


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (["gate.enabled=true", "cai.objective=sft"], "cai.placement"),
        (["gate.enabled=true", "cai.placement=server", "cai.objective=sft+dpo"], "cai.objective = 'sft'"),
        (["gate.enabled=true", "cai.placement=server", "cai.objective=sft", "cai.server_steps=2"], "at most"),
    ],
)
def test_server_step_points_config_errors_name_the_keys(tiny_model_dir, pairs_jsonl, tmp_path, over, message):
    with pytest.raises(ValueError, match="gate.server_step_points") as err:
        make_config(
            tiny_model_dir,
            pairs_jsonl,
            tmp_path / "run",
            "eval.enabled=true",
            "gate.server_step_points=4",
            *over,
        )
    assert message in str(err.value)


class FinalRecorder(ScriptedEvaluator):
    """ScriptedEvaluator that also remembers the adapter the final sets scored."""

    def evaluate(self, model, server_round: int, final: bool = False) -> dict[str, float]:
        if final:
            self.final_adapter = {k: v.clone() for k, v in get_adapter_state(model).items()}
            return {"final.advbench.refusal_rate": 0.5}
        return super().evaluate(model, server_round)


SAFEST_SCRIPT = {
    0: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0, "advbench.refusal_rate": 0.1},
    1: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0, "advbench.refusal_rate": 0.6},  # the safest accepted
    2: {"benign.refusal_rate": 0.0, "heldout.loss": 2.0, "advbench.refusal_rate": 0.3},
    3: {"benign.refusal_rate": 0.5, "heldout.loss": 2.0, "advbench.refusal_rate": 0.9},  # refused
}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k].to(a[k].dtype)) for k in a)


@pytest.mark.parametrize("resumed", [False, True])
def test_gate_final_safest_scores_and_saves_the_safest_accepted_adapter(
    tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch, resumed
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tests.inprocess import SimulatedCrash

    evaluator = FinalRecorder(SAFEST_SCRIPT)
    monkeypatch.setattr("fedrai.rounds._build_evaluator", lambda cfg, tok: evaluator)
    over = ["eval.enabled=true", "gate.enabled=true", "gate.final=safest", "federation.num_rounds=3"]
    over.append("output.save_every_round=false")  # only the final (safest) and the last adapters stay
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run", *over)
    if resumed:
        with pytest.raises(SimulatedCrash):
            run(cfg, crash_at_round=3)
        run(cfg, resume=True)
    else:
        run(cfg)
    rd = RunDir(tmp_path / "run")
    rows = rd.read_metrics()
    assert [r["gate.rejected"] for r in rows[1:]] == [0.0, 0.0, 1.0]
    assert rows[-1]["final.round"] == 1 and rows[-1]["final.advbench.refusal_rate"] == 0.5
    assert _same(evaluator.final_adapter, evaluator.seen[1])  # round 1's adapter scored the final sets
    assert _same(rd.load_checkpoint().adapter, evaluator.seen[2])  # the run goes on from the last kept
    assert sorted(p.name for p in (tmp_path / "run" / "adapters").iterdir()) == ["round-1", "round-3"]
    summary = json.loads(rd.summary.read_text())
    assert summary["final_adapter"] == str(rd.adapter(1)) and summary["last_adapter"] == str(rd.adapter(3))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    assert _same(
        get_adapter_state(PeftModel.from_pretrained(base, summary["final_adapter"])), evaluator.seen[1]
    )


def test_gate_final_safest_needs_the_gate_and_advbench_every_round():
    with pytest.raises(ConfigError, match="gate.final = 'safest'"):
        ExperimentConfig.from_dict({"gate": {"final": "safest"}})
    with pytest.raises(ConfigError, match="advbench_per_round > 0"):
        ExperimentConfig.from_dict(
            {"gate": {"final": "safest", "enabled": True}, "eval": {"advbench_per_round": 0}}
        )
    gate = AcceptanceGate()
    assert gate.note_kept(0, {"advbench.refusal_rate": 0.2}) and not gate.note_kept(
        1, {"advbench.refusal_rate": 0.1}
    )
    assert gate.note_kept(2, {"advbench.refusal_rate": 0.2}) and gate.safest_round == 2  # ties: the later
    restored = AcceptanceGate()
    restored.load_state(json.loads(json.dumps(gate.state())))
    assert (restored.safest_round, restored.safest_refusal) == (2, 0.2)
