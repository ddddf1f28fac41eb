"""The config reference table, generated from the fields (README and `fedrai config --reference`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from fedrai.config.experiment import ExperimentConfig


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
