"""Per-client, per-round view of the server's update guard: a markdown table and a heat map.

Reads the ``clients.<id>.*`` figures the guard writes into each metrics row (``strategies.guard``):
the refusal-margin change of each screened update, whether screening flagged it, whether the
update was rejected (by validation or screening), its norm ratio and how the aggregate followed it. Clients are partition ids
in simulation and node ids in deployment; no client text is involved.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_KEY = re.compile(r"clients\.(-?\d+)\.(.+)")

# What each ``screen.signal`` decides on: the per-client figure, its cell format and its axis label.
SIGNAL_FIGURES: dict[str, tuple[str, str, str]] = {
    "margin": ("screen.margin_change", "{:+.3f}", "refusal margin change per update (nats/token)"),
    "margin_t": ("screen.margin_t", "{:+.2f}", "paired t of the per-probe margin changes"),
    "specificity": ("screen.specificity", "{:+.2f}", "specificity: compliant over benign answers' gain"),
}


def _signal(signal: str) -> tuple[str, str, str]:
    if signal not in SIGNAL_FIGURES:
        raise ValueError(f"screen.signal {signal!r}: expected one of {sorted(SIGNAL_FIGURES)}")
    return SIGNAL_FIGURES[signal]


def client_figures(rows: Sequence[dict[str, Any]]) -> dict[int, dict[int, dict[str, float]]]:
    """``{client: {round: {figure: value}}}`` from the metrics rows."""
    out: dict[int, dict[int, dict[str, float]]] = {}
    for row in rows:
        r = int(row.get("round", 0))
        for key, value in row.items():
            m = _KEY.fullmatch(key)
            if m and isinstance(value, int | float):
                out.setdefault(int(m.group(1)), {}).setdefault(r, {})[m.group(2)] = float(value)
    return out


def _cell(fig: dict[str, float] | None, signal: str) -> str:
    if not fig:
        return "–"
    key, fmt, _ = _signal(signal)
    parts = []
    if key in fig:
        parts.append(fmt.format(fig[key]))
    elif "norm_ratio" in fig:
        parts.append(f"n={fig['norm_ratio']:.2g}")
    if "agg_cosine" in fig and key not in fig:
        parts.append(f"c={fig['agg_cosine']:+.2f}")
    if fig.get("agg_distance", 1.0) < 1e-6:
        parts.append("◆")
    if fig.get("rejected"):
        parts.append("✗")
    elif fig.get("screen.flagged"):
        parts.append("⚑")
    return " ".join(parts) or "·"


def screening_table(rows: Sequence[dict[str, Any]], signal: str = "margin") -> list[str]:
    """Markdown lines: one row per client, one column per round, each screened update shown by the figure
    of ``signal`` (the run's ``screen.signal``); empty when the run has no figures."""
    figures = client_figures(rows)
    if not figures:
        return []
    rounds = sorted({r for per in figures.values() for r in per})
    lines = ["| client | " + " | ".join(f"r{r}" for r in rounds) + " | rejected | flagged |"]
    lines.append("|---" * (len(rounds) + 3) + "|")
    for client in sorted(figures):
        per = figures[client]
        rejected = sum(bool(f.get("rejected")) for f in per.values())
        flagged = sum(bool(f.get("screen.flagged")) for f in per.values())
        cells = [_cell(per.get(r), signal) for r in rounds]
        lines.append(
            f"| {client} | " + " | ".join(cells) + f" | {rejected}/{len(per)} | {flagged}/{len(per)} |"
        )
    return lines


def plot_screening_heatmap(
    rows: Sequence[dict[str, Any]], path: Path, title: str = "", signal: str = "margin"
) -> Path | None:
    """Heat map of each client's screening figure per round, the one ``signal`` decides on (✗ = rejected,
    ! = flagged but kept); None without screening."""
    key, _, label = _signal(signal)
    figures = client_figures(rows)
    clients = sorted(c for c, per in figures.items() if any(key in f for f in per.values()))
    if not clients:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rounds = sorted({r for c in clients for r in figures[c]})
    grid = np.full((len(clients), len(rounds)), np.nan)
    for i, c in enumerate(clients):
        for j, r in enumerate(rounds):
            value = figures[c].get(r, {}).get(key)
            if value is not None:
                grid[i, j] = value
    bound = float(np.nanmax(np.abs(grid))) or 1.0
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.5 * len(rounds)), 1.6 + 0.4 * len(clients)))
    im = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
    for i, c in enumerate(clients):
        for j, r in enumerate(rounds):
            f = figures[c].get(r, {})
            if f.get("rejected"):
                ax.text(j, i, "✗", ha="center", va="center", fontsize=9)
            elif f.get("screen.flagged"):
                ax.text(j, i, "!", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(rounds)), [str(r) for r in rounds])
    ax.set_yticks(range(len(clients)), [str(c) for c in clients])
    ax.set_xlabel("round")
    ax.set_ylabel("client")
    ax.set_title((title + "\n" if title else "") + label, fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def screening_section(runs: Sequence[Any], out: Path) -> list[str]:
    """The report's 'Update screening' section for runs that have per-client figures (else nothing)."""
    lines: list[str] = []
    for run in runs:
        signal = str(run.config.get("screen", {}).get("signal", "margin"))
        table = screening_table(run.rounds, signal)
        if not table:
            continue
        if not lines:
            lines += [
                "## Update screening",
                "",
                "Per client (partition or node id) and round, the figure the run's screen decided on: the "
                "change of the refusal-over-compliance margin of its update on the server's red-team probes "
                "(`margin`, nats/token), that change's paired t over the probes (`margin_t`), or how much more "
                "it raised compliant than benign answers' likelihood (`specificity`); negative = less safe. Without screening, its update norm ratio `n=` and the cosine `c=` of its update with the aggregate's "
                "(`strategies.attribution`); ◆ the aggregate is this update (Krum's pick); "
                "✗ rejected (validation or screening), ⚑ flagged but kept.",
                "",
            ]
        lines += [f"### {run.name}", ""] + table + [""]
        png = plot_screening_heatmap(
            run.rounds, out / f"screening_{_slug(run.name)}.png", run.name, signal=signal
        )
        if png is not None:
            lines += [f"![update screening, {run.name}]({png.relative_to(out)})", ""]
    return lines


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"
