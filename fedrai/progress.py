"""What a user sees while a run goes: one line per round, and a table of all rounds."""

from __future__ import annotations

from typing import Any

# (metrics key, column title, format)
COLUMNS: list[tuple[str, str, str]] = [
    ("round", "round", "{:.0f}"),
    ("train_loss", "train loss", "{:.3f}"),
    ("clients", "clients", "{:.0f}"),
    ("failures", "failed", "{:.0f}"),
    ("safety.flagged", "flagged", "{:.0f}"),
    ("cai.revised_by_model", "revised", "{:.0f}"),
    ("cai.fallback_refusals", "fallback", "{:.0f}"),
    ("cai_server.revised_by_model", "server revised", "{:.0f}"),
    ("cai_server.fallback_refusals", "server fallback", "{:.0f}"),
    ("advbench.refusal_rate", "AdvBench refusal", "{:.3f}"),
    ("advbench.judge_safe_rate", "judge safe", "{:.3f}"),
    ("benign.refusal_rate", "benign refusal", "{:.3f}"),
    ("hhh.accuracy", "HHH", "{:.3f}"),
    ("mtbench.score", "MT-Bench", "{:.2f}"),
    ("alarming.refusal_rate", "safe-alarming refusal", "{:.3f}"),
    ("heldout.loss", "held-out loss", "{:.3f}"),
    ("gate.rejected", "gated", "{:.0f}"),
    ("bytes_up", "MB up", "{:.2f}"),
    ("seconds", "s", "{:.1f}"),
]


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if key == "bytes_up":
        value = value / 1e6
    return fmt.format(value)


def format_round_line(row: dict[str, Any], num_rounds: int) -> str:
    parts = [f"[fedrai] round {row['round']}/{num_rounds}"]
    for key, title, fmt in COLUMNS[1:]:
        if row.get(key) is not None:
            parts.append(f"{title}={_cell(row, key, fmt)}")
    return "  ".join(parts)


def rounds_table(rows: list[dict[str, Any]], title: str = "rounds") -> Any:
    """A rich Table of the metrics rows, showing only columns that have values."""
    from rich.table import Table

    present = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    table = Table(title=title)
    for _, name, _ in present:
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(*(_cell(r, key, fmt) for key, _, fmt in present))
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
    return lines
