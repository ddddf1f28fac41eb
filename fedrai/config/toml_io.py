"""Experiment TOML in: files, `key=value` overrides, and the `[fedrai]` writer table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from fedrai.config.base import ConfigError
from fedrai.versions import RUN_FILES_SCHEMA, newer_schema_message


def check_writer(table: Any, origin: str) -> None:
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
