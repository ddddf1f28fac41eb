"""The one typed experiment config.

Every knob of a run lives here, typed, defaulted and documented in one place (the way peft's
config dataclasses do it). A config is loaded from an experiment TOML, patched with
``--set section.key=value`` overrides, and travels to Flower's ServerApp and ClientApps as a
single TOML string in the run config, so every process validates the same object.

Validation is pydantic's: unknown keys, wrong types and out-of-range values fail at start-up
with the key's dotted name and what is allowed (see :class:`ConfigError`). One module a group of
sections; this package re-exports them, so ``from fedrai.config import X`` is the import to use.
Validating a config imports no Flower: the strategy names live here (``STRATEGY_NAMES``).
"""

from fedrai.config.base import EMBEDDED_MODEL, STRATEGY_NAMES, ConfigError, Section, absolute_if_exists
from fedrai.config.data import DataConfig, PartitionConfig
from fedrai.config.evaluation import EvalConfig, GateConfig
from fedrai.config.experiment import ExperimentConfig, OutputConfig, TrackingConfig
from fedrai.config.federation import FederationConfig, StrategyConfig, TrainConfig
from fedrai.config.guards import CAIConfig, SafetyConfig
from fedrai.config.model import LoraSettings, ModelConfig
from fedrai.config.reference import reference_markdown
from fedrai.config.toml_io import apply_override, check_writer, read_toml, split_overrides

__all__ = [
    "EMBEDDED_MODEL",
    "STRATEGY_NAMES",
    "CAIConfig",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "FederationConfig",
    "GateConfig",
    "LoraSettings",
    "ModelConfig",
    "OutputConfig",
    "PartitionConfig",
    "SafetyConfig",
    "Section",
    "StrategyConfig",
    "TrackingConfig",
    "TrainConfig",
    "absolute_if_exists",
    "apply_override",
    "check_writer",
    "read_toml",
    "reference_markdown",
    "split_overrides",
]
