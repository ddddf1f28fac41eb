"""The whole experiment: every section, cross-section checks, and loading from TOML or Flower."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w
import tomllib
from pydantic import BaseModel, Field, ValidationError, model_validator

from fedrai.config.base import STRATEGY_NAMES, ConfigError, Section
from fedrai.config.data import DataConfig, PartitionConfig
from fedrai.config.defences import AttackConfig, PrivacyConfig, ScreenConfig, ValidationConfig, check_defences
from fedrai.config.evaluation import EvalConfig, GateConfig
from fedrai.config.federation import FederationConfig, StrategyConfig, TrainConfig
from fedrai.config.guards import CAIConfig, SafetyConfig
from fedrai.config.model import LoraSettings, ModelConfig
from fedrai.config.toml_io import apply_override, check_writer, read_toml, split_overrides
from fedrai.versions import RUN_FILES_SCHEMA, fedrai_version


class OutputConfig(Section):
    """What a run writes."""

    dir: str = Field("runs/{name}", description="Run dir; `{name}` is the experiment name.")
    save_every_round: bool = Field(
        True, description="Save `adapters/round-N/` every round (the last is always saved)."
    )


class TrackingConfig(Section):
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


class ExperimentConfig(Section):
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
        if self.gate.final == "safest" and not (self.gate_enabled() and self.eval.advbench_per_round > 0):
            raise ValueError(
                "gate.final = 'safest' chooses among the rounds the gate accepted by their AdvBench refusal: "
                "it needs the gate on (gate.enabled) and eval.advbench_per_round > 0"
            )
        if self.gate.server_step_points > 1:
            if not (self.gate_enabled() and self.cai.placement in ("server", "both")):
                raise ValueError(
                    "gate.server_step_points > 1 lets the gate keep a point along the server's CAI step: it "
                    "needs the gate on (gate.enabled) and cai.placement = 'server' or 'both'"
                )
            if self.cai.objective != "sft" or self.gate.server_step_points > self.cai.server_steps:
                raise ValueError(
                    "gate.server_step_points > 1 splits the server's SFT step: it needs cai.objective = 'sft' "
                    f"and at most cai.server_steps ({self.cai.server_steps}) points"
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
            check_writer(data.pop("fedrai"), origin)
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
