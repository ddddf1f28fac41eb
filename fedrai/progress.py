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
