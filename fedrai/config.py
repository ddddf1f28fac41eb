"""The one typed experiment config.

Every knob of a run lives here, typed, defaulted and documented in one place (the way peft's
config dataclasses do it). A config is loaded from an experiment TOML, patched with
``--set section.key=value`` overrides, and travels to Flower's ServerApp and ClientApps as a
single TOML string in the run config, so every process validates the same object.

Validation is pydantic's: unknown keys, wrong types and out-of-range values fail at start-up
with the key's dotted name and what is allowed (see :class:`ConfigError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import tomli_w
import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedrai.defence_config import AttackConfig, PrivacyConfig, ScreenConfig, ValidationConfig, check_defences
from fedrai.versions import RUN_FILES_SCHEMA, fedrai_version, newer_schema_message

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what is allowed."""


def absolute_if_exists(value: str | None) -> str | None:
    """A relative path that exists from here, made absolute: the Flower server and client processes
    do not run in the directory the experiment was started from."""
    if value and not Path(value).is_absolute() and Path(value).exists():
        return str(Path(value).resolve())
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    """The base causal LM and how it is loaded."""

    name_or_path: str = Field(
        EMBEDDED_MODEL,
        description="Hugging Face hub id, local checkpoint dir, or `embedded:NAME` for an offline asset.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for a hub id.")
    hub_id: str | None = Field(
        None,
        description="Hub id saved adapters name as their base (`base_model_name_or_path`); unset = the hub "
        "id itself, an embedded model's upstream id, or the local path as given.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Compute dtype of the base model weights."
    )
    quantization: Literal["none", "4bit", "8bit"] = Field(
        "none", description="bitsandbytes loading (QLoRA with `4bit`); needs a GPU for speed."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` picks CUDA when available.")
    trust_remote_code: bool = Field(False, description="Passed to transformers loaders.")
    max_seq_length: int = Field(
        512, ge=16, description="Tokens per training example (longer ones are truncated)."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory in local training.")


class LoraSettings(_Section):
    """The LoRA adapter: the only weights that are trained and travel."""

    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA branch.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="Module names that get adapters (`all-linear` for every linear layer).",
    )


class DataConfig(_Section):
    """Where client training data comes from and how rows are read."""

    source: str = Field(
        "embedded:instructlab",
        description="JSONL / CSV / JSON file, a dir of them, a saved `datasets` dir, a hub dataset id, or `embedded:NAME`.",
    )
    split: str = Field("train", description="Split to read for a hub dataset.")
    prompt_field: str = Field("prompt", description="Column with the user prompt (prompt+response rows).")
    response_field: str = Field("response", description="Column with the answer (prompt+response rows).")
    messages_field: str = Field(
        "messages", description="Column with chat messages (role/content); used when present."
    )
    system_field: str | None = Field(None, description="Optional column with a system prompt.")
    keep_system_prompt: bool = Field(
        False, description="Keep system messages from chat rows in training text."
    )
    max_rows: int = Field(
        0, ge=0, description="Read at most this many rows (0 = all); sampled with the seed."
    )
    on_bad_row: Literal["error", "skip"] = Field(
        "error", description="`error` stops with file and line; `skip` counts and reports skipped rows."
    )
    harmful_source: str = Field(
        "embedded:harmful-pairs", description="Harmful prompt+answer pairs mixed in by `harmful_fraction`."
    )
    contrast_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of each client's rows that are contrast TRAIN rows: safe prompts with alarming "
        "words answered helpfully (fedrai.data.contrast); 0 = none.",
    )
    harmful_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of each client's rows that are harmful pairs (the paper used ~0.3).",
    )
    heldout_rows: int = Field(
        32, ge=0, description="Benign rows held out from training for server-side loss."
    )


class PartitionConfig(_Section):
    """How rows are split over clients."""

    method: Literal["iid", "dirichlet"] = Field("iid", description="IID or label-skewed Dirichlet split.")
    alpha: float = Field(0.5, gt=0.0, description="Dirichlet concentration (smaller = more skewed).")
    partition_by: str = Field("group", description="Column whose values the Dirichlet split skews.")
    min_partition_size: int = Field(
        2, ge=0, description="Dirichlet resamples until every client has this many rows."
    )
    rows_per_client: int = Field(
        0, ge=0, description="Cap on rows per client after partitioning (0 = no cap)."
    )


class TrainConfig(_Section):
    """Local LoRA SFT on each client, per round."""

    local_steps: int = Field(10, ge=1, description="Optimizer steps per client per round.")
    batch_size: int = Field(4, ge=1, description="Examples per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    optimizer: Literal["adamw", "sgd"] = Field(
        "adamw", description="Local optimizer (fresh each round; SCAFFOLD's theory assumes sgd)."
    )
    learning_rate: float = Field(2e-4, gt=0.0, description="Peak learning rate of the first round.")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "cosine", description="How the learning rate decays across rounds (constant within a round)."
    )
    min_lr_ratio: float = Field(
        0.1, ge=0.0, le=1.0, description="Final learning rate as a share of the peak."
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Gradient clipping (0 = off).")


class StrategyConfig(_Section):
    """Server-side aggregation, by name, with the knobs of Flower's strategies."""

    name: str = Field(
        "fedavg",
        description="fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad, fedmedian, fedtrimmedavg, krum, "
        "multikrum, bulyan, scaffold.",
    )
    fraction_train: float = Field(1.0, gt=0.0, le=1.0, description="Share of clients sampled each round.")
    min_train_clients: int = Field(2, ge=1, description="Fewest clients a round trains on.")
    min_available_clients: int = Field(
        2, ge=1, description="Clients that must be connected before a round starts."
    )
    proximal_mu: float = Field(
        0.01, ge=0.0, description="FedProx proximal term weight (clients add it to their loss)."
    )
    server_learning_rate: float = Field(
        1.0, gt=0.0, description="FedAvgM / FedOpt / SCAFFOLD server step size."
    )
    server_momentum: float = Field(0.9, ge=0.0, lt=1.0, description="FedAvgM momentum.")
    beta_1: float = Field(0.9, ge=0.0, lt=1.0, description="FedAdam / FedYogi first moment decay.")
    beta_2: float = Field(0.99, ge=0.0, lt=1.0, description="FedAdam / FedYogi second moment decay.")
    tau: float = Field(1e-3, gt=0.0, description="FedOpt adaptivity (epsilon).")
    trim_beta: float = Field(0.2, ge=0.0, lt=0.5, description="FedTrimmedAvg: share trimmed at each end.")
    num_malicious_clients: int = Field(
        0, ge=0, description="Krum / MultiKrum / Bulyan: assumed Byzantine clients."
    )
    krum_select: int = Field(
        1, ge=1, description="MultiKrum: replies kept (the lowest Krum scores) and averaged."
    )


class FederationConfig(_Section):
    """The simulated federation and what travels."""

    num_clients: int = Field(4, ge=1, description="Clients (Flower SuperNodes) in the simulation.")
    num_rounds: int = Field(3, ge=1, description="Federated rounds.")
    cpus_per_client: int = Field(1, ge=1, description="Ray CPUs per ClientApp (whole CPUs).")
    gpus_per_client: float = Field(0.0, ge=0.0, description="Ray GPUs per ClientApp (fractions share a GPU).")
    wire_dtype: Literal["float32", "float16"] = Field(
        "float32",
        description="dtype of adapter tensors on the wire (bf16 is cast; Flower arrays cannot hold it).",
    )
    round_timeout_s: float = Field(3600.0, gt=0.0, description="How long the server waits for replies.")


class EvalConfig(_Section):
    """Server-side evaluation of the global model after every round."""

    enabled: bool = Field(True, description="Evaluate after every round (and before the first).")
    advbench_source: str = Field(
        "embedded:advbench",
        description="AdvBench CSV (goal,target), pyrit YAML, hub id or `embedded:advbench`.",
    )
    advbench_per_round: int = Field(
        32, ge=0, description="Seeded AdvBench subset evaluated every round (0 = skip)."
    )
    advbench_final: int = Field(
        520, ge=0, description="AdvBench prompts evaluated after the last round (0 = skip)."
    )
    benign_source: str = Field(
        "embedded:mtbench", description="Benign prompts for over-refusal (MT-Bench first turns)."
    )
    benign_per_round: int = Field(16, ge=0, description="Benign prompts evaluated every round (0 = skip).")
    benign_final: int = Field(
        80, ge=0, description="Benign prompts evaluated after the last round (0 = skip; MT-Bench has 80)."
    )
    alarming_per_round: int = Field(
        0,
        ge=0,
        description="Safe prompts with alarming words (contrast EVAL families, never trained on) scored "
        "for over-refusal every round (0 = skip).",
    )
    alarming_final: int = Field(
        0, ge=0, description="Safe-alarming prompts scored after the last round (0 = skip; 221 exist)."
    )
    max_new_tokens: int = Field(48, ge=1, description="Greedy tokens generated per prompt.")
    batch_size: int = Field(16, ge=1, description="Prompts per generation batch.")
    scorers: list[Literal["refusal", "refusal_openfedllm", "judge"]] = Field(
        default_factory=lambda: ["refusal", "refusal_openfedllm"],
        description="Scorers of AdvBench responses.",
    )
    hhh_source: str = Field(
        "embedded:hhh",
        description="BIG-bench hhh_alignment: a folder of `<part>/task.json` files, one task.json, or "
        "`embedded:hhh`.",
    )
    hhh_per_round: int = Field(
        32, ge=0, description="Seeded HHH subset scored every round (0 = skip; no generation, cheap)."
    )
    hhh_final: int = Field(
        221, ge=0, description="HHH examples scored after the last round (0 = skip; 221 = all)."
    )
    hhh_max_tokens: int = Field(
        2048,
        ge=16,
        description="Longest dialogue + answer scored for HHH; longer dialogues lose their oldest tokens "
        "(counted as `hhh.truncated`).",
    )
    mtbench_judge: bool = Field(
        False,
        description="Score MT-Bench answers (1-10) by an LLM judge over an OpenAI-compatible endpoint "
        "(single-answer grading, both turns); off by default: it needs an endpoint.",
    )
    mtbench_source: str = Field(
        "embedded:mtbench", description="MT-Bench `question.jsonl` for the judged score."
    )
    mtbench_questions: int = Field(80, ge=1, description="Seeded MT-Bench questions answered and judged.")
    mtbench_every: int = Field(
        0,
        ge=0,
        description="Also judge every N rounds (round 0 = the base model); 0 = after the last round only.",
    )
    mtbench_turns: Literal[1, 2] = Field(
        2, description="Turns answered and judged (2 = MT-Bench's protocol)."
    )
    mtbench_max_new_tokens: int = Field(256, ge=1, description="Greedy tokens per MT-Bench answer.")
    mtbench_judge_url: str = Field(
        "http://127.0.0.1:8000/v1", description="Judge's OpenAI-compatible base URL (vLLM, a hosted API)."
    )
    mtbench_judge_model: str = Field("gpt-4", description="Model name sent to the judge endpoint.")
    mtbench_judge_api_key_env: str = Field(
        "FEDRAI_JUDGE_API_KEY", description="Environment variable holding the judge's API key (unset = none)."
    )
    mtbench_judge_timeout_s: float = Field(120.0, gt=0, description="Per-request judge timeout.")
    mtbench_judge_retries: int = Field(2, ge=0, description="Judge retries on time-outs, 429 and 5xx.")
    mtbench_judge_max_tokens: int = Field(
        1024, ge=16, description="Tokens the judge may write per judgement."
    )
    mtbench_judge_concurrency: int = Field(4, ge=1, description="Judge requests in flight at once.")


class GateConfig(_Section):
    """Server-side acceptance of each round's global adapter: safety may not cost helpfulness."""

    enabled: bool | None = Field(
        None,
        description="Keep the previous global adapter when the new one over-refuses benign prompts or "
        "loses held-out loss; unset = on when a guard (filter or CAI) is on and per-round benign eval exists.",
    )
    max_benign_refusal_increase: float = Field(
        0.10,
        ge=0.0,
        le=1.0,
        description="Allowed rise of benign refusal rate over the best accepted round (absolute).",
    )
    max_heldout_loss_increase: float = Field(
        0.05, ge=0.0, description="Allowed rise of held-out loss over the best accepted round (fraction)."
    )
    max_alarming_refusal_increase: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Allowed rise of safe-alarming refusal over the best accepted round (absolute; "
        "only when eval.alarming_per_round > 0).",
    )


class SafetyConfig(_Section):
    """The client-side safety filter on local (prompt, response) pairs."""

    enabled: bool = Field(False, description="Screen client data before local training.")
    backend: Literal["cross_encoder", "embedded", "llama_guard", "detoxify"] = Field(
        "embedded", description="Classifier backend."
    )
    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Rows scoring at or above this unsafe probability are flagged."
    )
    mode: Literal["prompt", "response", "response_in_context"] = Field(
        "response_in_context", description="What is judged: a refusal to a harmful prompt is safe in context."
    )
    action: Literal["drop", "refuse", "revise"] = Field("drop", description="What happens to flagged rows.")
    head_path: str | None = Field(
        None,
        description="Embedded backend: trained head file; cross_encoder backend: trained model dir "
        "(default: the shipped one).",
    )
    encoder: str = Field(
        "embedded:minilm-l6-v2", description="Embedded backend: sentence-transformers encoder."
    )
    encoder_dtype: Literal["head", "float32", "bfloat16"] = Field(
        "head",
        description="Embedded backend: encoder compute dtype; `head` = the one the head was trained on "
        "(float32 for the shipped head; bfloat16 is ~3.5x float32 on CPUs with AMX/AVX512-BF16 but ~8x "
        "slower without them; a mismatch warns).",
    )
    encoder_threads: int = Field(
        1,
        ge=0,
        description="Embedded backend: torch threads while encoding (0 = torch's default, all cores). 1 is "
        "far faster on a small machine shared with other jobs or clients; raise it on a dedicated many-core one.",
    )
    llama_guard_model: str = Field(
        "meta-llama/Llama-Guard-3-1B", description="Llama Guard 3 hub id or local dir."
    )
    llama_guard_categories: list[str] = Field(
        default_factory=list, description="Custom category lines (empty = S1-S14)."
    )
    detoxify_checkpoint: str | None = Field(None, description="Detoxify checkpoint file for offline use.")
    detoxify_config_dir: str | None = Field(
        None, description="Hugging Face config dir for an offline Detoxify checkpoint."
    )
    max_chars: int = Field(8000, ge=1, description="Longer texts are truncated (and counted) before scoring.")
    on_unparseable: Literal["unsafe", "safe"] = Field(
        "unsafe", description="Verdict for unparseable judge output (fail closed)."
    )
    batch_size: int = Field(64, ge=1, description="Rows scored per batch.")

    @field_validator("head_path")
    @classmethod
    def _absolute_head_path(cls, value: str | None) -> str | None:
        return absolute_if_exists(value)


class CAIConfig(_Section):
    """Constitutional AI critique-and-revise, on clients, on the server, or both."""

    placement: Literal["none", "client", "server", "both"] = Field("none", description="Where CAI runs.")
    constitution: str | None = Field(None, description="Constitution TOML/YAML (default: the shipped one).")
    client_scope: Literal["flagged", "all"] = Field(
        "flagged", description="Client CAI over filtered rows only (cheap) or all rows."
    )
    principle_order: Literal["random", "sequence"] = Field(
        "random", description="Draw one principle per row, or apply in order."
    )
    revision_rounds: int = Field(1, ge=1, description="Critique/revise passes per row.")
    max_tries: int = Field(2, ge=1, description="Revisions tried before the fallback.")
    fallback: Literal["refuse", "drop"] = Field(
        "refuse", description="What happens when no revision passes the filter."
    )
    llm: Literal["self", "local", "http"] = Field(
        "self",
        description="Who critiques: the current global model, another local model, or an HTTP endpoint.",
    )
    llm_model: str | None = Field(
        None, description="`local`: model id or path; `http`: model name sent to the endpoint."
    )
    http_url: str = Field("http://127.0.0.1:8080/v1", description="OpenAI-compatible base URL for `http`.")
    http_timeout_s: float = Field(60.0, gt=0.0, description="Per-request timeout for `http`.")
    http_retries: int = Field(2, ge=0, description="Retries for `http`.")
    max_new_tokens: int = Field(96, ge=1, description="Tokens per critique or revision.")
    server_prompts_source: str = Field(
        "embedded:strongreject", description="Red-team prompts for server-side CAI."
    )
    server_prompts_per_round: int = Field(
        8, ge=0, description="Red-team prompts critiqued per round on the server."
    )
    server_steps: int = Field(
        50, ge=0, description="Server tuning steps on revisions per round (the paper: 50)."
    )
    server_learning_rate: float = Field(1e-4, gt=0.0, description="Learning rate of server-side tuning.")
    server_assume_harmful: bool = Field(
        False,
        description="Treat every server red-team answer that is not already a refusal as unsafe (revise it or "
        "fall back to a refusal), instead of asking the filter: the prompts are harmful by construction.",
    )
    server_contrast_per_round: int = Field(
        0,
        ge=0,
        description="Contrast TRAIN rows (safe prompts with alarming words, answered helpfully) added to "
        "the server's benign anchor each round (SFT, and DPO pairs when cai.server_benign_dpo).",
    )
    server_benign_source: str = Field(
        "embedded:instructlab",
        description="Benign (prompt, response) rows mixed into server-side tuning so that it learns when "
        "NOT to refuse (rows the clients hold and held-out rows are excluded); empty = none.",
    )
    server_benign_per_round: int = Field(
        8,
        ge=0,
        description="Benign rows added to each round's server SFT (and as DPO pairs, see below); 0 = none.",
    )
    server_benign_dpo: bool = Field(
        True,
        description="Also DPO on benign rows: their reference answer preferred over a constitution refusal.",
    )
    objective: Literal["sft", "dpo", "sft+dpo"] = Field(
        "sft", description="Train on revisions by SFT, DPO (revision over original), or both."
    )
    dpo_beta: float = Field(0.1, gt=0.0, description="DPO temperature.")

    @field_validator("constitution")
    @classmethod
    def _absolute_constitution(cls, value: str | None) -> str | None:
        return absolute_if_exists(value)


class OutputConfig(_Section):
    """What a run writes."""

    dir: str = Field("runs/{name}", description="Run dir; `{name}` is the experiment name.")
    save_every_round: bool = Field(
        True, description="Save `adapters/round-N/` every round (the last is always saved)."
    )


class TrackingConfig(_Section):
    """Experiment trackers fed with every metrics row (same keys as metrics.jsonl), step = round."""

    tensorboard: bool = Field(
        False,
        description="Write TensorBoard scalars to `RUN_DIR/tensorboard` (needs `pip install fedrai[tracking]`).",
    )
    mlflow: bool = Field(
        False, description="Log params and per-round metrics to MLflow (needs `fedrai[tracking]`)."
    )
    mlflow_tracking_uri: str = Field(
        "",
        description="MLflow store, e.g. `sqlite:///mlflow.db` or a server URL; empty = `sqlite:///RUN_DIR/mlflow.db`.",
    )
    mlflow_experiment: str = Field("", description="MLflow experiment name; empty = the experiment's `name`.")


class ExperimentConfig(_Section):
    """A whole experiment: every section above, plus its name and seed."""

    name: str = Field("experiment", min_length=1, description="Used in the run dir and reports.")
    seed: int = Field(0, ge=0, description="Seeds data split, sampling, LoRA init and training.")
    setting: str = Field("", description="Label of the guard setting in reports (e.g. `FL + filter`).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    data: DataConfig = Field(default_factory=DataConfig)
    partition: PartitionConfig = Field(default_factory=PartitionConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    cai: CAIConfig = Field(default_factory=CAIConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    screen: ScreenConfig = Field(default_factory=ScreenConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    attack: AttackConfig = Field(default_factory=AttackConfig)

    @model_validator(mode="after")
    def _check_cross_section(self) -> ExperimentConfig:
        from fedrai.strategies import STRATEGY_NAMES

        if self.strategy.name not in STRATEGY_NAMES:
            raise ValueError(
                f"strategy.name = {self.strategy.name!r} is not a known strategy; "
                f"valid: {', '.join(STRATEGY_NAMES)}"
            )
        if self.strategy.min_train_clients > self.federation.num_clients:
            raise ValueError(
                f"strategy.min_train_clients = {self.strategy.min_train_clients} exceeds "
                f"federation.num_clients = {self.federation.num_clients}"
            )
        if self.strategy.min_available_clients > self.federation.num_clients:
            raise ValueError(
                f"strategy.min_available_clients = {self.strategy.min_available_clients} exceeds "
                f"federation.num_clients = {self.federation.num_clients}"
            )
        if self.gate.enabled and not (
            self.eval.enabled and (self.eval.benign_per_round > 0 or self.data.heldout_rows > 0)
        ):
            raise ValueError(
                "gate.enabled = true judges each round by its evaluation: set eval.enabled = true and "
                "eval.benign_per_round > 0 (and/or data.heldout_rows > 0)"
            )
        if self.safety.action == "revise" and self.cai.placement not in ("client", "both"):
            raise ValueError("safety.action = 'revise' needs cai.placement = 'client' or 'both'")
        client_cai = self.cai.placement in ("client", "both")
        flagged_only = client_cai and self.cai.client_scope == "flagged"
        if flagged_only and not (self.safety.enabled and self.safety.action == "revise"):
            raise ValueError(
                "cai.client_scope = 'flagged' revises what the filter flags: set safety.enabled = true and "
                "safety.action = 'revise' (or cai.client_scope = 'all')"
            )
        check_defences(self)
        return self

    # ----------------------------------------------------------------- loading
    def gate_enabled(self) -> bool:
        """``gate.enabled``, or when unset: on for guarded settings that evaluate benign refusal."""
        if self.gate.enabled is not None:
            return self.gate.enabled
        guarded = self.safety.enabled or self.cai.placement != "none"
        return guarded and self.eval.enabled and self.eval.benign_per_round > 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "config") -> ExperimentConfig:
        """Validate a config; a ``[fedrai]`` table (who wrote it: ``to_toml``) is checked, not kept."""
        if "fedrai" in data:
            data = dict(data)
            _check_writer(data.pop("fedrai"), origin)
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(_explain(err, origin)) from None

    @classmethod
    def from_toml(cls, path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
        data = read_toml(path)
        for item in overrides or []:
            apply_override(data, item)
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_toml_text(cls, text: str, origin: str = "run config") -> ExperimentConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{origin}: not valid TOML: {err}") from None
        return cls.from_dict(data, origin=origin)

    @classmethod
    def from_run_config(cls, run_config: dict[str, Any]) -> ExperimentConfig:
        """Build from Flower's run config (see ``[tool.flwr.app.config]`` in pyproject.toml).

        Keys: ``config-toml`` (a whole resolved config, as ``fedrai run`` sends it), else
        ``experiment`` (a TOML path relative to the app dir); then ``set`` (``key=value``
        overrides separated by spaces outside TOML strings and lists, as
        ``flwr run . --run-config "set='train.local_steps=5'"``; see :func:`split_overrides`).
        """
        text = str(run_config.get("config-toml", "") or "")
        overrides = split_overrides(str(run_config.get("set", "") or ""))
        if text:
            data = tomllib.loads(text)
            origin = "run config 'config-toml'"
        else:
            experiment = str(run_config.get("experiment", "") or "")
            if not experiment:
                data, origin = {}, "run config"
            else:
                path = Path(experiment)
                if not path.is_file():
                    raise ConfigError(f"run config 'experiment': {experiment}: file not found")
                data, origin = tomllib.loads(path.read_text(encoding="utf-8")), experiment
        for item in overrides:
            apply_override(data, item)
        return cls.from_dict(data, origin=origin)

    def to_toml(self) -> str:
        """The resolved config, with a ``[fedrai]`` table naming the version and schema that wrote it."""
        writer = {"version": fedrai_version(), "schema_version": RUN_FILES_SCHEMA}
        return tomli_w.dumps({"fedrai": writer, **self.model_dump(mode="json", exclude_none=True)})

    def run_dir(self) -> Path:
        return Path(self.output.dir.format(name=self.name))


def _check_writer(table: Any, origin: str) -> None:
    """A config written by a newer fedrai may mean something this one cannot read: say so."""
    schema = table.get("schema_version") if isinstance(table, dict) else None
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise ConfigError(f"{origin}: fedrai.schema_version must be a positive integer, got {schema!r}")
    if schema > RUN_FILES_SCHEMA:
        writer = str(table.get("version", "unknown"))
        raise ConfigError(f"{origin}: {newer_schema_message('the config', schema, RUN_FILES_SCHEMA, writer)}")


def read_toml(path: str | Path, what: str = "experiment file") -> dict[str, Any]:
    """A TOML file as a dict, or a :class:`ConfigError` naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def split_overrides(text: str, origin: str = "run config 'set'") -> list[str]:
    """Split a run config's ``set`` string into ``key=value`` items, TOML-aware.

    Items are separated by whitespace outside TOML strings and brackets, so values with spaces
    and lists work: ``setting='FL + filter' lora.target_modules=["q_proj", "v_proj"]``.
    """
    items: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, depth, quote = i, 0, ""
        while i < n:
            if quote:
                if text.startswith(quote, i):
                    i += len(quote)
                    quote = ""
                    continue
                i += 2 if text[i] == "\\" and quote in ('"', '"""') else 1
                continue
            ch = text[i]
            if ch in "\"'":
                quote = ch * 3 if text.startswith(ch * 3, i) else ch
                i += len(quote)
                continue
            if ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
            elif ch.isspace() and depth <= 0:
                break
            i += 1
        if quote or depth > 0:
            what = f"unclosed {quote}" if quote else "unclosed bracket"
            raise ConfigError(f"{origin}: {what} in {text[start:]!r}")
        items.append(text[start:i])
    return items


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``section.key=value`` override; the value is parsed as a TOML value.

    ``train.local_steps=5``, ``lora.target_modules=["q_proj","v_proj"]``, and bare words
    (``strategy.name=fedadam``) all work: a value that is not valid TOML is taken as a string.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key=value, e.g. train.local_steps=5")
    key, raw = item.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise ConfigError(f"override {item!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _explain(err: ValidationError, origin: str) -> str:
    lines = [f"{origin}: invalid experiment config"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            section = _section_for(e["loc"][:-1])
            allowed = ", ".join(section.model_fields) if section else ""
            lines.append(f"  {key}: unknown key (allowed here: {allowed})")
        else:
            given = e.get("input")
            shown = "" if isinstance(given, dict) else f" (got {given!r})"
            lines.append(f"  {key}: {e['msg']}{shown}")
    return "\n".join(lines)


def _section_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = ExperimentConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def reference_markdown() -> str:
    """The config reference, generated from the fields, for README and `fedrai config --reference`."""
    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    top = ExperimentConfig.model_fields
    for name in ("name", "seed", "setting"):
        f = top[name]
        out.append(f"| `{name}` | {_type_name(f.annotation)} | `{f.default!r}` | {f.description} |")
    for section, field in top.items():
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            continue
        default_section = annotation()
        for key, f in annotation.model_fields.items():
            default = getattr(default_section, key)
            out.append(
                f"| `{section}.{key}` | {_type_name(f.annotation)} | `{default!r}` | {f.description or ''} |"
            )
    return "\n".join(out)


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("|", "\\|")
