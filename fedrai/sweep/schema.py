"""The sweep file's schema: a typed pydantic model, validated before any cell is expanded.

Like the experiment config, every problem names its dotted key (``settings[1].slug``); unknown
keys are refused with the allowed ones listed, so a typo never silently drops a row of the table.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

BASE_MODEL_SETTING = "base model, no FL"


def slugify(label: str) -> str:
    """``"FL + filter + CAI"`` -> ``"fl-filter-cai"``: safe in paths, stable across runs."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return slug or "setting"


def _as_list(value: Any) -> Any:
    """``set = "a=b"`` is a one-item list; ``None`` an empty one."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _overrides(values: list[str]) -> list[str]:
    bad = [v for v in values if "=" not in v]
    if bad:
        raise ValueError(f"overrides need key=value, got {bad}")
    return values


Overrides = Annotated[list[str], BeforeValidator(_as_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyEntry(_Strict):
    """A column of the table: a strategy name (``strategy.name``) with its own overrides."""

    name: str = Field(min_length=1, description="Strategy name (`strategy.name` of every cell).")
    set: Overrides = Field(default_factory=list, description="`--set`-style overrides for this column.")
    slug: str | None = Field(None, description="Run-dir part; default: derived from the name.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("set")
    @classmethod
    def _set(cls, value: list[str]) -> list[str]:
        return _overrides(value)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and slugify(value) != value:
            raise ValueError(f"{value!r} must be lowercase letters, digits and dashes")
        return value

    @property
    def key(self) -> str:
        return self.slug or slugify(self.name)


class SettingEntry(StrategyEntry):
    """A row of the table: a label (config ``setting``) and its overrides."""

    strategies: list[str] | None = Field(
        None, description="Strategies (names or slugs) this row applies to; default: all."
    )


def _entry(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


Setting = Annotated[SettingEntry, BeforeValidator(_entry)]
Strategy = Annotated[StrategyEntry, BeforeValidator(_entry)]


class SweepFile(_Strict):
    """A sweep file: a base experiment and what varies (see :mod:`fedrai.sweep`)."""

    base: str = Field(min_length=1, description="Base experiment TOML, relative to the sweep file.")
    name: str | None = Field(None, min_length=1, description="Sweep name; default: the file's stem.")
    out: str | None = Field(None, description="Default for --out (relative to the cwd).")
    seeds: list[Annotated[int, Field(ge=0, strict=True)]] | None = Field(
        None, min_length=1, description="Seeds; default: the base experiment's seed."
    )
    set: Overrides = Field(default_factory=list, description="Overrides for every cell.")
    include_base_model: StrictBool = Field(False, description="One extra row: the base model without FL.")
    base_model_setting: str = Field(BASE_MODEL_SETTING, description="Row label of the base-model row.")
    base_model_set: Overrides = Field(default_factory=list, description="Overrides for the base-model row.")
    settings: list[Setting] = Field(min_length=1, description="Rows: `[[settings]]` tables or names.")
    strategies: list[Strategy] = Field(min_length=1, description="Columns: `[[strategies]]` tables or names.")

    @field_validator("set", "base_model_set")
    @classmethod
    def _set(cls, value: list[str]) -> list[str]:
        return _overrides(value)

    @field_validator("seeds")
    @classmethod
    def _unique(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"has duplicates: {value}")
        return value


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def explain(err: ValidationError) -> list[str]:
    """One line per problem, naming the dotted key (``settings[0].set``) and what is allowed."""
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not str(p).startswith("function-"))
        key = _where(loc)
        if e["type"] == "missing":
            lines.append(
                f"`{key}` is missing" + (": give at least one" if key in ("settings", "strategies") else "")
            )
        elif e["type"] == "extra_forbidden":
            model = (
                SettingEntry
                if loc[:1] == ("settings",)
                else StrategyEntry
                if loc[:1] == ("strategies",)
                else SweepFile
            )
            allowed = ", ".join(sorted(model.model_fields))
            lines.append(f"`{key}`: unknown key (allowed: {allowed})")
        else:
            given = e.get("input")
            shown = "" if isinstance(given, dict) else f" (got {given!r})"
            msg = str(e["msg"]).removeprefix("Value error, ")
            lines.append(f"`{key}`: {msg}{shown}")
    return lines


def parse_sweep_file(doc: dict[str, Any]) -> tuple[SweepFile | None, list[str]]:
    """The validated sweep file, or None and the problem lines."""
    try:
        return SweepFile.model_validate(doc), []
    except ValidationError as err:
        return None, explain(err)
