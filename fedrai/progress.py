"""What a user sees while a run goes: one line per round, and a table of all rounds."""

from __future__ import annotations

import math
from typing import Any

# (metrics key, column title, kind): rates are shown in percent, as in `fedrai report`.
COLUMNS: list[tuple[str, str, str]] = [
    ("round", "round", "int"),
    ("train_loss", "train loss", "num"),
    ("clients", "clients", "int"),
    ("failures", "failed", "int"),
    ("safety.flagged", "flagged", "int"),
    ("cai.revised_by_model", "revised", "int"),
    ("cai.fallback_refusals", "fallback", "int"),
    ("cai_server.revised_by_model", "server revised", "int"),
    ("cai_server.fallback_refusals", "server fallback", "int"),
    ("advbench.refusal_rate", "AdvBench refusal %", "pct"),
    ("advbench.judge_safe_rate", "judge safe %", "pct"),
    ("benign.refusal_rate", "benign refusal %", "pct"),
    ("hhh.accuracy", "HHH %", "pct"),
    ("mtbench.score", "MT-Bench", "score"),
    ("alarming.refusal_rate", "safe-alarming refusal %", "pct"),
    ("heldout.loss", "held-out loss", "num"),
    ("gate.rejected", "gated", "int"),
    ("bytes_up", "MB up", "mb"),
    ("seconds", "s", "sec"),
]

FORMATS: dict[str, str] = {
    "int": "{:.0f}",
    "num": "{:.3f}",
    "score": "{:.2f}",
    "pct": "{:.1f}",
    "mb": "{:.2f}",
    "sec": "{:.1f}",
}


def format_value(value: Any, kind: str) -> str:
    """One figure as the console and the report show it: rates x100 (percent), bytes in MB."""
    if value is None:
        return "-"
    if kind == "pct":
        value = 100 * value
    elif kind == "mb":
        value = value / 1e6
    return FORMATS[kind].format(value)


def format_metric(key: str, value: object) -> str:
    """Any metric by its key: rates in percent (``6.2%``), as ``fedrai run`` and ``fedrai report`` show them."""
    if not isinstance(value, float) or math.isnan(value):
        return str(value)
    if "_rate" in key or key.endswith(".accuracy"):
        return f"{100 * value:.1f}%"
    return f"{value:.4f}"


def _cell(row: dict[str, Any], key: str, kind: str) -> str:
    return format_value(row.get(key), kind)


def format_round_line(row: dict[str, Any], num_rounds: int) -> str:
    """``[fedrai] round 2/3  train loss=1.234  ...  AdvBench refusal=6.2%``: one line, grep-able."""
    parts = [f"[fedrai] round {row['round']}/{num_rounds}"]
    for key, title, kind in COLUMNS[1:]:
        if row.get(key) is not None:
            name, unit = (title.removesuffix(" %"), "%") if kind == "pct" else (title, "")
            parts.append(f"{name}={_cell(row, key, kind)}{unit}")
    return "  ".join(parts)


def rounds_table(rows: list[dict[str, Any]], title: str = "rounds") -> Any:
    """A rich Table of the metrics rows, showing only columns that have values."""
    from rich.table import Table

    present = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    table = Table(title=title)
    for _, name, _ in present:
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(*(_cell(r, key, kind) for key, _, kind in present))
    return table


# (metric key, label, kind) of the before/after lines: pct rates, num losses.
GUARD_LINES: list[tuple[str, str, str]] = [
    ("advbench.refusal_rate", "AdvBench refusal (higher = safer)", "pct"),
    ("benign.refusal_rate", "benign MT-Bench refusal (lower = more helpful)", "pct"),
    ("alarming.refusal_rate", "safe prompts, alarming words, refused (lower = better)", "pct"),
    ("heldout.loss", "held-out benign loss", "num"),
]


def guard_effect_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Before (round 0: the model before any federated round) and after (last round) on the same
    per-round prompts, plus the final full sets when measured: what the guards did, in a few lines."""
    evaluated = [r for r in rows if r.get("advbench.refusal_rate") is not None]
    before = next((r for r in evaluated if r.get("round") == 0), None)
    after = next((r for r in reversed(evaluated) if r.get("round") != 0), None)
    if before is None or after is None:
        return []
    lines = [f"What the guards did (same prompts; before = round 0, after = round {after['round']}):"]
    for key, label, kind in GUARD_LINES:
        b, a = before.get(key), after.get(key)
        if b is None or a is None:
            continue
        n = after.get(key.split(".")[0] + ".n")
        if kind == "pct":
            size = f", {int(n)} prompts" if n else ""
            lines.append(
                f"  {label:<56} before {100 * b:5.1f}%  after {100 * a:5.1f}%  ({100 * (a - b):+.1f} points{size})"
            )
        else:
            lines.append(f"  {label:<56} before {b:6.3f}  after {a:6.3f}  ({100 * (a - b) / b:+.1f}%)")
    final = next((r for r in reversed(rows) if r.get("final.advbench.refusal_rate") is not None), None)
    if final is not None:
        parts = []
        for key, label, kind in GUARD_LINES[:3]:
            value, n = final.get(f"final.{key}"), final.get(f"final.{key.split('.')[0]}.n")
            if value is not None and kind == "pct":
                parts.append(f"{label.split(' (')[0]} {100 * value:.1f}% of {int(n or 0)}")
        if parts:
            lines.append("  final, larger sets: " + "; ".join(parts))
    gated = sum(1 for r in rows if r.get("gate.rejected"))
    guards = []
    if any(r.get("safety.flagged") for r in rows):
        guards.append(f"filter flagged {int(sum(r.get('safety.flagged') or 0 for r in rows))} client rows")
    if any(r.get("cai_server.fallback_refusals") is not None for r in rows):
        guards.append(
            f"server CAI trained on {int(sum(r.get('cai_server.train_rows') or 0 for r in rows))} rows"
        )
    if any(r.get("gate.rejected") is not None for r in rows):
        guards.append(f"the gate refused {gated} round(s)")
    if guards:
        lines.append("  guards: " + ", ".join(guards))
    lines.extend(refused_candidate_lines(rows))
    return lines


def refused_candidate_lines(rows: list[dict[str, Any]]) -> list[str]:
    """What each round the gate refused would have been: the trade-off the gate judged, in figures."""
    lines = []
    for r in rows:
        if not r.get("gate.rejected"):
            continue
        parts = [
            f"{label.split(' (')[0]} {100 * r[f'candidate.{key}']:.1f}%"
            for key, label, kind in GUARD_LINES[:3]
            if kind == "pct" and r.get(f"candidate.{key}") is not None
        ]
        if parts:
            lines.append(
                f"  refused round {r['round']}, candidate: " + "; ".join(parts) + " (previous adapter kept)"
            )
    return lines
