"""Saving a round's adapter so that it works on another machine, and says what it is.

peft records the path the base was loaded from (for the embedded model, a cache dir on this
machine) and writes a blank model card. A portable adapter names its base by hub id, carries the
tokenizer it was trained with, and a card with the run's facts: base, data, guards, rounds,
safety figures, licence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fedrai.assets import ASSETS, EMBEDDED_PREFIX, UPSTREAM_HUB_IDS, is_embedded
from fedrai.config import ExperimentConfig

ADAPTER_CONFIG = "adapter_config.json"


def base_model_id(cfg: ExperimentConfig) -> str:
    """What ``base_model_name_or_path`` should say: ``model.hub_id``, a hub id as given, the embedded
    model's upstream hub id, or a local path as given."""
    if cfg.model.hub_id:
        return cfg.model.hub_id
    ref = cfg.model.name_or_path
    if is_embedded(ref):
        name = ref[len(EMBEDDED_PREFIX) :]
        return UPSTREAM_HUB_IDS.get(name, ref)
    return ref


def base_licence(cfg: ExperimentConfig) -> str | None:
    """The base model's licence when fedrai knows it (the embedded assets), else None."""
    ref = cfg.model.name_or_path
    if is_embedded(ref) and ref[len(EMBEDDED_PREFIX) :] in ASSETS:
        return ASSETS[ref[len(EMBEDDED_PREFIX) :]].licence
    return None


def _looks_like_hub_id(ref: str) -> bool:
    return ref.count("/") == 1 and not ref.startswith((".", "/", "~")) and not Path(ref).exists()


def save_adapter(
    model: Any, tokenizer: Any, out_dir: str | Path, cfg: ExperimentConfig, row: dict[str, Any]
) -> Path:
    """``save_pretrained`` + the base's hub id in adapter_config.json + tokenizer + model card."""
    out = Path(out_dir)
    model.save_pretrained(str(out))
    config_path = out / ADAPTER_CONFIG
    adapter_cfg = json.loads(config_path.read_text(encoding="utf-8"))
    adapter_cfg["base_model_name_or_path"] = base_model_id(cfg)
    if cfg.model.revision and not is_embedded(cfg.model.name_or_path):
        adapter_cfg["revision"] = cfg.model.revision
    config_path.write_text(json.dumps(adapter_cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tokenizer.save_pretrained(str(out))
    (out / "README.md").write_text(model_card(cfg, row), encoding="utf-8")
    return out


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "not measured"


def _loss(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def model_card(cfg: ExperimentConfig, row: dict[str, Any]) -> str:
    """A Hugging Face model card (YAML metadata + markdown) for the adapter of ``row['round']``."""
    from huggingface_hub import ModelCard, ModelCardData

    base = base_model_id(cfg)
    licence = base_licence(cfg)
    data = ModelCardData(
        base_model=base if _looks_like_hub_id(base) else None,
        library_name="peft",
        license=licence.lower() if licence else None,
        tags=["lora", "peft", "federated-learning", "flower", "fedrai", "safety"],
        pipeline_tag="text-generation",
    )
    server_round = int(row.get("round", 0))
    s, c, e = cfg.safety, cfg.cai, cfg.eval
    guards = []
    if s.enabled:
        guards.append(f"safety filter `{s.backend}` (threshold {s.threshold}, flagged rows: {s.action})")
    if c.placement != "none":
        guards.append(f"constitutional AI on the {c.placement} ({c.objective})")
    figures = []
    for prefix, n_key, what in (("", "per_round", "this round's subset"), ("final.", "final", "final set")):
        adv = row.get(f"{prefix}advbench.refusal_rate")
        ben = row.get(f"{prefix}benign.refusal_rate")
        if adv is None and ben is None:
            continue
        n_adv = row.get(f"{prefix}advbench.n", getattr(e, f"advbench_{n_key}"))  # measured n first
        n_ben = row.get(f"{prefix}benign.n", getattr(e, f"benign_{n_key}"))
        figures.append(
            f"| {what} | {_pct(adv)} (n={n_adv}) | {_pct(ben)} (n={n_ben}) | "
            f"{_loss(row.get(f'{prefix}heldout.loss', row.get('heldout.loss')))} |"
        )
    lines = [
        f"# {cfg.name}: LoRA adapter after round {server_round} of {cfg.federation.num_rounds}",
        "",
        f"A LoRA adapter for `{base}`, trained federatedly with fedrai "
        f"(Flower + LoRA) by {cfg.federation.num_clients} clients "
        f"({cfg.strategy.name}, {cfg.train.local_steps} local steps a round).",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f'base = AutoModelForCausalLM.from_pretrained("{base}")  # or a local copy of it',
        'model = PeftModel.from_pretrained(base, "path/to/this/dir")',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/dir")  # saved beside the adapter',
        "```",
        "",
        "## Run",
        "",
        f"- base model: `{base}` (loaded as `{cfg.model.name_or_path}`, {cfg.model.dtype}, "
        f"quantization {cfg.model.quantization})",
        f"- LoRA: r={cfg.lora.r}, alpha={cfg.lora.alpha}, targets {', '.join(cfg.lora.target_modules)}",
        f"- data: `{cfg.data.source}`, harmful pairs `{cfg.data.harmful_source}` mixed in at "
        f"{cfg.data.harmful_fraction:.0%}; partition {cfg.partition.method}",
        f"- guards: {'; '.join(guards) if guards else 'none'}"
        + (f" (setting: {cfg.setting})" if cfg.setting else ""),
        f"- rounds: {server_round} of {cfg.federation.num_rounds}, seed {cfg.seed}",
        "",
        f"## Safety figures (greedy, {e.max_new_tokens} new tokens; refusal = llm-attacks keyword rule)",
        "",
    ]
    if figures:
        lines += [
            "| prompts | AdvBench refusal | benign refusal | held-out loss |",
            "|---|---|---|---|",
            *figures,
        ]
    else:
        lines.append("Not evaluated in this run (eval.enabled = false).")
    if row.get("gate.rejected"):
        kept = {
            "aggregate": "the clients' aggregate without the server's CAI step",
            "partial": f"the clients' aggregate after {int(row.get('gate.kept_steps', 0))} of the server's CAI steps",
        }.get(str(row.get("gate.kept")), "the previous adapter")
        lines += ["", f"The acceptance gate refused this round's candidate: this is {kept}."]
    lines += [
        "",
        "## Licence",
        "",
        (
            f"The base model's licence applies: {licence}."
            if licence
            else "The base model's licence applies (see its own model card)."
        ),
        "",
    ]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)))
