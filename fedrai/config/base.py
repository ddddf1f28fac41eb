"""What every config section shares: strict keys, the error type, path handling."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
# Aggregation strategies by name. The config owns this list so that validating a config needs no
# Flower import; fedrai.strategies checks at import that its registry builds exactly these.
STRATEGY_NAMES: tuple[str, ...] = (
    "fedavg",
    "fedprox",
    "fedavgm",
    "fedadam",
    "fedyogi",
    "fedadagrad",
    "fedmedian",
    "fedtrimmedavg",
    "krum",
    "multikrum",
    "bulyan",
    "scaffold",
)


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what is allowed."""


def absolute_if_exists(value: str | None) -> str | None:
    """A relative path that exists from here, made absolute: the Flower server and client processes
    do not run in the directory the experiment was started from."""
    if value and not Path(value).is_absolute() and Path(value).exists():
        return str(Path(value).resolve())
    return value


class Section(BaseModel):
    """A config section: unknown keys fail, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
