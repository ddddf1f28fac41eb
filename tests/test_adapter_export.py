"""Saved adapters are portable: hub id as base, tokenizer and a model card beside them."""

from __future__ import annotations

import json
import shutil

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from fedrai.adapter_export import base_model_id
from fedrai.assets import asset_path
from fedrai.config import ExperimentConfig
from fedrai.run_dir import RunDir
from tests.test_rounds import make_config, run


def test_base_model_id_rules() -> None:
    def cfg(**model: str) -> ExperimentConfig:
        return ExperimentConfig.from_dict({"model": model})

    assert base_model_id(cfg()) == "HuggingFaceTB/SmolLM2-135M-Instruct"  # the embedded default
    assert (
        base_model_id(cfg(name_or_path="meta-llama/Llama-3.1-8B-Instruct"))
        == "meta-llama/Llama-3.1-8B-Instruct"
    )
    assert base_model_id(cfg(name_or_path="/models/llama")) == "/models/llama"
    assert base_model_id(cfg(name_or_path="/models/llama", hub_id="org/llama")) == "org/llama"


def test_adapter_of_an_embedded_model_loads_elsewhere_with_the_cache_gone(
    tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch
) -> None:
    # The tiny model plays the embedded SmolLM2 in a private asset cache.
    cache = tmp_path / "cache"
    monkeypatch.setenv("FEDRAI_CACHE", str(cache))
    shutil.copytree(tiny_model_dir, asset_path("smollm2-135m-instruct"))
    (cache / "smollm2-135m-instruct" / ".complete.json").write_text("{}", encoding="utf-8")
    cfg = make_config(
        tiny_model_dir,
        pairs_jsonl,
        tmp_path / "run",
        "model.name_or_path=embedded:smollm2-135m-instruct",
        "setting=FL + filter",
    )
    run(cfg)
    adapter = RunDir(cfg.output.dir).adapter(2)
    adapter_cfg = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter_cfg["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    card = (adapter / "README.md").read_text(encoding="utf-8")
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "license: apache-2.0" in card and "round 2 of 2" in card
    assert str(pairs_jsonl) in card and "FL + filter" in card
    assert "Not evaluated" in card  # eval is off in this config: no figures invented

    # Another machine: the adapter dir copied, the asset cache gone, the base a local copy.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(adapter, elsewhere / "adapter")
    shutil.copytree(tiny_model_dir, elsewhere / "base")
    shutil.move(str(cache), str(tmp_path / "cache-moved-away"))
    monkeypatch.setenv("FEDRAI_CACHE", str(tmp_path / "empty-cache"))
    tokenizer = AutoTokenizer.from_pretrained(str(elsewhere / "adapter"))
    base = AutoModelForCausalLM.from_pretrained(str(elsewhere / "base"))
    model = PeftModel.from_pretrained(base, str(elsewhere / "adapter")).eval()

    # Same logits as the adapter loaded on the original machine's base.
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(adapter)
    ).eval()
    ids = tokenizer("How do I bake bread?", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, reference(ids).logits)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora_b)  # trained, not the zero init


def test_card_reports_eval_figures_with_n(tiny_model_dir, tmp_path) -> None:
    from fedrai.adapter_export import model_card

    cfg = ExperimentConfig.from_dict({"model": {"name_or_path": str(tiny_model_dir)}})
    row = {
        "round": 3,
        "advbench.refusal_rate": 0.0625,
        "benign.refusal_rate": 0.0,
        "heldout.loss": 1.7712,
        "final.advbench.refusal_rate": 0.083,
        "final.benign.refusal_rate": 0.0125,
    }
    card = model_card(cfg, row)
    assert "base_model:" not in card  # a local path is not a hub id
    assert "| this round's subset | 6.2% (n=32) | 0.0% (n=16) | 1.771 |" in card
    assert "| final set | 8.3% (n=520) | 1.2% (n=80) | 1.771 |" in card
    assert "license:" not in card and "see its own model card" in card


def test_local_path_base_stays_a_path(tiny_model_dir, pairs_jsonl, tmp_path) -> None:
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run", "federation.num_rounds=1")
    run(cfg)
    adapter = RunDir(cfg.output.dir).adapter(1)
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_model_dir
    )
    assert (adapter / "tokenizer.json").is_file() or (adapter / "tokenizer_config.json").is_file()
