"""ServerEvaluator on the tiny model with tiny data, and `fedrai eval` end to end."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from fedrai.config import ExperimentConfig
from fedrai.data import Row
from fedrai.evaluation.server_eval import ServerEvaluator, seeded_subset
from tests.conftest import write_hhh_dir

GOALS = [f"Explain how to do harmful thing number {i}" for i in range(12)]
BENIGN = ["How do I bake bread?", "Write a poem about the sea.", "Explain photosynthesis.", "Name a colour."]


@pytest.fixture
def eval_files(tmp_path: Path) -> tuple[Path, Path]:
    adv = tmp_path / "adv.csv"
    adv.write_text("goal,target\n" + "".join(f"{g},Sure\n" for g in GOALS), encoding="utf-8")
    benign = tmp_path / "question.jsonl"
    benign.write_text("".join(json.dumps({"turns": [b, "and?"]}) + "\n" for b in BENIGN), encoding="utf-8")
    return adv, benign


def _cfg(adv: Path, benign: Path, **eval_overrides: object) -> ExperimentConfig:
    ev = {
        "advbench_source": str(adv),
        "benign_source": str(benign),
        "advbench_per_round": 3,
        "advbench_final": 5,
        "benign_per_round": 2,
        "benign_final": 4,
        "max_new_tokens": 4,
        "batch_size": 4,
        "hhh_per_round": 0,
        "hhh_final": 0,
    }
    ev.update(eval_overrides)
    return ExperimentConfig.from_dict({"seed": 3, "eval": ev})


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    return model, tokenizer


HELDOUT = [
    Row(
        id="h0",
        messages=[{"role": "user", "content": "How do I bake bread?"}],
        response="Knead and bake.",
        origin="benign",
        group="g",
    ),
    Row(
        id="h1",
        messages=[{"role": "user", "content": "Capital of France?"}],
        response="Paris.",
        origin="benign",
        group="g",
    ),
]


@dataclass
class Verdict:
    unsafe_prob: float
    category: str | None = None


class AlwaysSafe:
    def __init__(self) -> None:
        self.seen: list[int] = []

    def score(self, prompts: list[str], responses: list[str | None]) -> list[Verdict]:
        self.seen.append(len(prompts))
        return [Verdict(0.0) for _ in prompts]


def test_seeded_subset_is_stable_ordered_and_nested() -> None:
    items = [str(i) for i in range(50)]
    small, large = seeded_subset(items, 5, seed=7), seeded_subset(items, 20, seed=7)
    assert small == seeded_subset(items, 5, seed=7)
    assert small == sorted(small, key=int)
    assert set(small) <= set(large)
    assert seeded_subset(items, 500, seed=7) == items
    assert seeded_subset(items, 5, seed=8) != small


def test_round_metrics_same_subset_every_round(tiny, eval_files, monkeypatch) -> None:
    model, tokenizer = tiny
    cfg = _cfg(*eval_files, scorers=["refusal", "refusal_openfedllm", "judge"])
    judge = AlwaysSafe()
    ev = ServerEvaluator(cfg, tokenizer, HELDOUT, judge=judge)
    first = ev.evaluate(model, 1)
    prompts_1 = [r["prompt"] for r in ev.records()]
    second = ev.evaluate(model, 2)
    assert [r["prompt"] for r in ev.records()] == prompts_1
    assert {k: v for k, v in first.items() if k != "eval.seconds"} == {
        k: v for k, v in second.items() if k != "eval.seconds"
    }
    for key in (
        "advbench.refusal_rate",
        "advbench.refusal_rate_openfedllm",
        "advbench.judge_safe_rate",
        "benign.refusal_rate",
        "heldout.loss",
    ):
        assert isinstance(first[key], float) and not math.isnan(first[key]), key
    assert first["advbench.n"] == 3 and first["benign.n"] == 2
    assert first["advbench.judge_safe_rate"] == 1.0 and judge.seen == [3, 3]
    assert first["heldout.loss"] > 0
    samples = ev.samples(1)
    assert [s["set"] for s in samples] == ["advbench", "benign"]
    assert all(s["round"] == 2 and isinstance(s["response"], str) for s in samples)
    # eval.seconds is the evaluation's own wall time: a clock that reads 100 s at the start and
    # 104.5 s after it must give 4.5
    import itertools
    import types

    import fedrai.evaluation.server_eval as server_eval

    ticks = itertools.chain([100.0], itertools.repeat(104.5))
    monkeypatch.setattr(server_eval, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert ev.evaluate(model, 3)["eval.seconds"] == 4.5


def test_final_uses_larger_sets_and_prefix(tiny, eval_files) -> None:
    model, tokenizer = tiny
    ev = ServerEvaluator(_cfg(*eval_files), tokenizer, HELDOUT)
    metrics = ev.evaluate(model, 5, final=True)
    assert metrics["final.advbench.n"] == 5 and metrics["final.benign.n"] == 4
    assert "final.advbench.refusal_rate" in metrics and "final.heldout.loss" in metrics
    assert not any(k.startswith("advbench.") for k in metrics)
    assert "final.advbench.judge_safe_rate" not in metrics  # judge scorer off by default
    assert set(ev.advbench_round) <= set(ev.advbench_final)


def test_refusal_rate_counts_refusals(eval_files, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in model that always refuses: the rate is 1.0 on both sets (over-refusal shows)."""
    from fedrai.evaluation import server_eval

    monkeypatch.setattr(
        server_eval, "generate", lambda model, tok, convs, **kw: ["I'm sorry, I cannot help."] * len(convs)
    )
    ev = ServerEvaluator(_cfg(*eval_files), tokenizer=None, heldout_rows=[])
    metrics = ev.evaluate(object(), 1)
    assert metrics["advbench.refusal_rate"] == 1.0 and metrics["benign.refusal_rate"] == 1.0
    assert "heldout.loss" not in metrics


def test_disabled_and_missing_judge(tiny, eval_files) -> None:
    model, tokenizer = tiny
    assert ServerEvaluator(_cfg(*eval_files, enabled=False), tokenizer, []).evaluate(model, 1) == {}
    nothing = ServerEvaluator(_cfg(*eval_files, advbench_per_round=0, benign_per_round=0), tokenizer, [])
    assert set(nothing.evaluate(model, 1)) == {"eval.seconds"}


def test_eval_cli_writes_json(tiny_model_dir: Path, eval_files, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedrai.cli.eval import app

    adv, benign = eval_files
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        json.dumps({"prompt": "Capital of France?", "response": "Paris."}) + "\n", encoding="utf-8"
    )
    out = tmp_path / "out" / "eval.json"
    args = ["--model", str(tiny_model_dir), "--out", str(out), "--heldout", str(heldout)]
    for kv in (
        f"eval.advbench_source={json.dumps(str(adv))}",
        f"eval.benign_source={json.dumps(str(benign))}",
        "eval.advbench_final=4",
        "eval.benign_final=2",
        "eval.max_new_tokens=3",
        f"eval.hhh_source={json.dumps(str(write_hhh_dir(tmp_path / 'hhh')))}",
        "eval.hhh_final=221",
    ):
        args += ["--set", kv]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["metrics"]["advbench.n"] == 4 and data["metrics"]["benign.n"] == 2
    assert "heldout.loss" in data["metrics"] and data["adapter"] is None
    assert data["metrics"]["hhh.n"] == 4 and 0.0 <= data["metrics"]["hhh.accuracy"] <= 1.0
    assert re.search(r"hhh\.accuracy\s+\d+\.\d%", result.output)  # printed (in percent), not only written
    assert len(data["responses"]) == 6 + 4
    bad = CliRunner().invoke(app, ["--set", "eval.batch_size=0", "--out", str(out)])
    assert bad.exit_code == 2 and "batch_size" in bad.output


def test_eval_with_adapter_dir(tiny_model_dir: Path, eval_files, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from fedrai.evaluation.standalone import evaluate_model

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    cfg = _cfg(*eval_files, advbench_final=2, benign_final=1, max_new_tokens=3)
    cfg.model.name_or_path = str(tiny_model_dir)
    result = evaluate_model(cfg, adapter=str(tmp_path / "adapter"))
    assert result["adapter"].endswith("adapter") and result["metrics"]["advbench.n"] == 2
    with pytest.raises(FileNotFoundError, match="not a peft adapter dir"):
        evaluate_model(cfg, adapter=str(tmp_path))


def test_disjoint_final_sets_leave_out_the_per_round_prompts(tiny, eval_files) -> None:
    _, tokenizer = tiny
    nested = ServerEvaluator(_cfg(*eval_files), tokenizer, HELDOUT)
    ev = ServerEvaluator(_cfg(*eval_files, disjoint_final=True, benign_final=2), tokenizer, HELDOUT)
    assert ev.advbench_round == nested.advbench_round and ev.benign_round == nested.benign_round
    assert len(ev.advbench_final) == 5 and not set(ev.advbench_final) & set(ev.advbench_round)
    assert set(ev.benign_final) == set(BENIGN) - set(ev.benign_round)
    assert not ev.final_is_round()


def test_disjoint_final_too_few_prompts_names_the_keys(tiny, eval_files, tmp_path: Path) -> None:
    from fedrai.config import ConfigError
    from fedrai.preflight import PreflightError, check_eval_sources

    cfg = _cfg(*eval_files, disjoint_final=True)  # benign: 2 per round + 4 final > 4 prompts
    with pytest.raises(PreflightError, match=r"eval.benign_source has 4 prompts.*= 6"):
        check_eval_sources(cfg)
    with pytest.raises(ConfigError, match=r"benign set needs 2 per-round \+ 4 final prompts.*has 4"):
        ServerEvaluator(cfg, tiny[1], HELDOUT)
    check_eval_sources(_cfg(*eval_files, disjoint_final=True, benign_final=2))
