"""What a user sees while a run goes: one line per round, and a table of all rounds."""

from __future__ import annotations

import math
import textwrap
from typing import Any

from fedrai.evaluation.gate import point_label, point_steps, points_in

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
    ("gate.kept", "kept", "str"),
    ("gate.kept_steps", "kept server steps", "int"),  # a point part-way along the server's step
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
    "str": "{}",
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


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The columns with values in ``rows``; ``gated`` only where ``kept`` (which says more) is absent."""
    present = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    if any(c[0] == "gate.kept" for c in present):
        present = [c for c in present if c[0] != "gate.rejected"]
    return present


def format_round_line(row: dict[str, Any], num_rounds: int) -> str:
    """``[fedrai] round 2/3  train loss=1.234  ...  AdvBench refusal=6.2%``: one line, grep-able."""
    parts = [f"[fedrai] round {row['round']}/{num_rounds}"]
    for key, title, kind in _columns([row])[1:]:
        if row.get(key) is not None:
            name, unit = (title.removesuffix(" %"), "%") if kind == "pct" else (title, "")
            parts.append(f"{name}={_cell(row, key, kind)}{unit}")
    return "  ".join(parts)


def rounds_table(rows: list[dict[str, Any]], title: str = "rounds", width: int | None = None) -> Any:
    """A rich Table of the metrics rows, showing only columns that have values.

    ``width``: the terminal's. A table of all rounds wider than that, whose rounds fit side by side,
    comes transposed (one line per figure, one column per round): a few rounds read whole in 80
    columns, where the wide table would cut every header and cell to "tra…".
    """
    from rich.table import Table

    present = _columns(rows)
    cells = [[_cell(r, key, kind) for key, _, kind in present] for r in rows]
    natural = (
        sum(max(len(name), *(len(c[i]) for c in cells)) + 3 for i, (_, name, _) in enumerate(present)) + 1
    )
    label = max(len(name) for _, name, _ in present)
    transposed = label + 3 + sum(max(len(c[i]) for i in range(len(present))) + 3 for c in cells) + 1
    if width is not None and natural > width >= transposed:
        table = Table(title=title)
        table.add_column("round", justify="left")
        for r in rows:
            table.add_column(_cell(r, "round", "int"), justify="right")
        for i, (_, name, _) in enumerate(present[1:], start=1):
            table.add_row(name, *(c[i] for c in cells))
        return table
    table = Table(title=title)
    for _, name, _ in present:
        table.add_column(name, justify="right")
    for c in cells:
        table.add_row(*c)
    return table


# (metric key, label, kind) of the before/after lines: pct rates, num losses. Labels fit 42 columns,
# so that a before/after line fits an 80-column terminal.
GUARD_LINES: list[tuple[str, str, str]] = [
    ("advbench.refusal_rate", "AdvBench refusal (higher = safer)", "pct"),
    ("benign.refusal_rate", "MT-Bench refusal (benign; lower = better)", "pct"),
    ("alarming.refusal_rate", "safe-but-alarming refusal (lower = better)", "pct"),
    ("heldout.loss", "held-out loss (benign; lower = better)", "num"),
]
LABEL_WIDTH = 42
SHORT = {  # names in the one-line summaries
    "advbench.refusal_rate": "AdvBench",
    "benign.refusal_rate": "MT-Bench",
    "alarming.refusal_rate": "safe-but-alarming",
    "heldout.loss": "held-out loss",
}
KEPT_WORDS = {
    "candidate": "the candidate",
    "partial": "a point part-way along the server's step",
    "aggregate": "the clients' aggregate",
    "previous": "the previous adapter",
}


def _n(row: dict[str, Any], key: str, prefix: str = "") -> int | None:
    n = row.get(f"{prefix}{key.split('.')[0]}.n")
    return int(n) if isinstance(n, int | float) else None


def _before_after(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per figure measured on both sides: before, after, change and the set's size (n)."""
    lines = [f"  {'':<{LABEL_WIDTH}} {'before':>7}  {'after':>7}  {'change':>10}  {'n':>4}"]
    for key, label, kind in GUARD_LINES:
        b, a = before.get(key), after.get(key)
        if not isinstance(b, int | float) or not isinstance(a, int | float):
            continue
        if kind == "pct":
            cells = (f"{100 * b:.1f}%", f"{100 * a:.1f}%", f"{100 * (a - b):+.1f} pts")
        else:
            cells = (f"{b:.3f}", f"{a:.3f}", f"{100 * (a - b) / b:+.1f}%" if b else "-")
        n = _n(after, key)
        lines.append(
            f"  {label:<{LABEL_WIDTH}} {cells[0]:>7}  {cells[1]:>7}  {cells[2]:>10}  {n if n else '':>4}".rstrip()
        )
    return lines


def guard_effect_lines(rows: list[dict[str, Any]], clients: list[dict[str, Any]] | None = None) -> list[str]:
    """The demo's closing lines: before (round 0, the model before any federated round) and after (the
    adapter the server kept after the last round), on the same prompts, each with its n; then what each
    guard did. ``clients``: the run's per-client rows (``clients.jsonl``), so that a client's filter
    counts, reported every round it is sampled, count once."""
    evaluated = [r for r in rows if r.get("advbench.refusal_rate") is not None]
    before = next((r for r in evaluated if r.get("round") == 0), None)
    after = next((r for r in reversed(evaluated) if r.get("round") != 0), None)
    if before is None or after is None:
        return []
    lines = [
        "What the guards did, on the same prompts (n each):",
        f"  before = round 0 (no training yet); after = the adapter kept after round {after['round']}",
    ]
    lines += _before_after(before, after)
    final = [k for k, _, kind in GUARD_LINES if kind == "pct" and after.get(f"final.{k}") is not None]
    if any(
        _n(after, k, "final.") != _n(after, k) for k in final
    ):  # larger final sets: after the last round only
        lines += _wrap(
            "  after, on the larger final sets: "
            + "; ".join(
                f"{SHORT[k]} {100 * after[f'final.{k}']:.1f}% of {_n(after, k, 'final.')}" for k in final
            )
        )
    lines += guard_lines(rows, clients)
    return lines


def guard_lines(rows: list[dict[str, Any]], clients: list[dict[str, Any]] | None = None) -> list[str]:
    """What the filter, server CAI and the gate did over the run, one line each (those that ran)."""
    trained = [r for r in rows if r.get("round") != 0]
    lines = []
    filt = _filter_counts(trained, clients)
    if filt is not None:
        flagged, rows_seen, dropped, harmful, harmful_kept, n_clients = filt
        where = f" of {rows_seen} client rows" if rows_seen else " client rows"
        where += f" ({_count(n_clients, 'client')})" if n_clients else " (summed over rounds)"
        text = f"  filter      flagged {flagged}{where}"
        if dropped:
            text += f", dropped {dropped} before training"
        if harmful:
            text += f"; {harmful_kept} of {harmful} harmful pairs got through"
        lines += _wrap(text)
    cai = [r for r in trained if any(k.startswith("cai_server.") for k in r)]
    if cai:

        def total(key: str) -> int:
            return int(sum(r.get(f"cai_server.{key}") or 0 for r in cai))

        lines += _wrap(
            f"  server CAI  {total('rows')} red-team prompts in {_count(len(cai), 'round')}: {total('fallback_refusals')} "
            f"harm-naming refusals, {total('revised_by_model')} model revisions, + {total('benign_rows')} "
            f"benign/contrast rows; {total('sft_steps') + total('dpo_steps')} steps"
        )
    lines += gate_lines(trained)
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


GUARD_INDENT = " " * 14  # under the text of "  server CAI  ..."


def _wrap(text: str) -> list[str]:
    """A guard line cut to 80 columns, its continuation under its text: whole in a terminal and a log."""
    return textwrap.wrap(text, width=80, subsequent_indent=GUARD_INDENT, break_on_hyphens=False)


def _filter_counts(
    trained: list[dict[str, Any]], clients: list[dict[str, Any]] | None
) -> tuple[int, int, int, int, int, int] | None:
    """(flagged, rows, dropped, harmful rows, harmful kept, clients): once per client when the
    per-client rows say who reported what (a client guards its data once a run but reports the
    counts every round it is sampled), else summed over rounds."""
    keys = ("safety.flagged", "data.rows", "safety.dropped", "data.harmful_rows", "safety.harmful_kept")
    per_client = {}
    for c in clients or []:
        who = c.get("partition-id", c.get("node_id"))
        if who is not None and c.get("safety.flagged") is not None:
            per_client.setdefault(who, c)
    source = list(per_client.values()) or [r for r in trained if r.get("safety.flagged") is not None]
    if not source:
        return None
    sums = [int(sum(r.get(k) or 0 for r in source)) for k in keys]
    return (*sums, len(per_client))  # type: ignore[return-value]


def refused_labels(row: dict[str, Any]) -> list[str]:
    """Prefixes of the adapters a gated round may have judged and refused, in the order judged: the
    candidate, the points along the server's step (``partialN``, the latest first), the clients' aggregate."""
    return ["candidate", *(point_label(n) for n in sorted(points_in(row), reverse=True)), "aggregate"]


def gate_lines(trained: list[dict[str, Any]]) -> list[str]:
    """Per round what the gate kept; for each refused candidate, what it would have been."""
    judged = [r for r in trained if r.get("gate.rejected") is not None]
    if not judged:
        return []
    by_kept: dict[str, list[str]] = {}
    for r in judged:  # runs from before `gate.kept`: a refused round kept the previous adapter
        kept = r.get("gate.kept") or ("previous" if r["gate.rejected"] else "candidate")
        by_kept.setdefault(str(kept), []).append(str(r["round"]))
    lines = _wrap(
        "  gate        kept "
        + "; ".join(
            f"{KEPT_WORDS.get(k, k)} in round{'s' if len(rounds) > 1 else ''} {', '.join(rounds)}"
            for k, rounds in by_kept.items()
        )
    )
    for r in judged:
        if not r["gate.rejected"]:
            continue
        for which in refused_labels(r):
            parts = [
                f"{SHORT[key]} {100 * r[f'{which}.{key}']:.1f}%"
                for key, _, kind in GUARD_LINES
                if kind == "pct" and isinstance(r.get(f"{which}.{key}"), int | float)
            ]
            if parts:
                steps = point_steps(which)
                what = which if steps is None else f"the point after {steps} server steps"
                lines += _wrap(f"{GUARD_INDENT}round {r['round']}, refused {what}: " + ", ".join(parts))
    return lines
