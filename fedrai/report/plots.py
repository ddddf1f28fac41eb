"""Per-round curves, one line per run, written as 150-dpi PNGs that read well in an image viewer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedrai.report.runs import Run
from fedrai.report.seeds import group_by_setting

DPI = 150


@dataclass(frozen=True)
class Curve:
    key: str
    title: str
    ylabel: str
    file: str
    percent: bool


CURVES: tuple[Curve, ...] = (
    Curve(
        "advbench.refusal_rate",
        "AdvBench refusal rate (higher = safer)",
        "Refusal rate (%)",
        "advbench_refusal",
        True,
    ),
    Curve(
        "benign.refusal_rate",
        "Benign (MT-Bench) refusal rate (lower = more helpful)",
        "Refusal rate (%)",
        "benign_refusal",
        True,
    ),
    Curve(
        "alarming.refusal_rate",
        "Safe prompts with alarming words: refusal rate (lower = more helpful)",
        "Refusal rate (%)",
        "alarming_refusal",
        True,
    ),
    Curve("heldout.loss", "Held-out benign loss", "Loss (nats / response token)", "heldout_loss", False),
    Curve("train_loss", "Client training loss", "Loss (mean over clients)", "train_loss", False),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _label(run: Run) -> str:
    return f"{run.name} ({run.setting}, {run.strategy})"


# Distinct marker and dash per run, so runs with equal values stay visible on top of each other.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def _draw(ax, runs: Sequence[Run], curve: Curve) -> bool:
    drawn = False
    for i, run in enumerate(runs):
        xs, ys = run.series(curve.key)
        if not xs:
            continue
        ys = [100 * y for y in ys] if curve.percent else ys
        ax.plot(
            xs,
            ys,
            marker=_MARKERS[i % len(_MARKERS)],
            linestyle=_DASHES[(i // len(_MARKERS) + i) % len(_DASHES)],
            markersize=5,
            linewidth=1.8,
            color=f"C{i % 10}",
            label=_label(run),
        )
        drawn = True
    ax.set_title(curve.title, fontsize=11)
    ax.set_xlabel("Round (0 = before training)" if curve.key != "train_loss" else "Round")
    ax.set_ylabel(curve.ylabel)
    ax.grid(True, alpha=0.3)
    if curve.percent:
        ax.set_ylim(-3, 103)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return drawn


def plot_curves(runs: Sequence[Run], curve: Curve, path: Path) -> Path | None:
    """One metric across runs; None (no file) when no run has it."""
    if not any(run.series(curve.key)[0] for run in runs):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    _draw(ax, runs, curve)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_overview(runs: Sequence[Run], path: Path) -> Path | None:
    """All curves in a two-column grid with one shared legend below."""
    present = [c for c in CURVES if any(run.series(c.key)[0] for run in runs)]
    if not present:
        return None
    plt = _pyplot()
    nrows = (len(CURVES) + 1) // 2
    fig, axes = plt.subplots(nrows, 2, figsize=(12, 4.25 * nrows))
    for ax in list(axes.flat)[len(CURVES) :]:
        ax.axis("off")
    for ax, curve in zip(axes.flat, CURVES, strict=False):
        if curve in present:
            _draw(ax, runs, curve)
        else:
            ax.set_title(curve.title + " (no data)", fontsize=11)
            ax.axis("off")
    handles, labels = {}, []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    ncol = min(len(labels), 3) or 1
    fig.legend(
        [handles[lab] for lab in labels], labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False
    )
    rows_of_legend = (len(labels) + ncol - 1) // ncol
    fig.tight_layout(rect=(0, 0.04 + 0.03 * rows_of_legend, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


TRADEOFF_X = "benign.refusal_rate"
TRADEOFF_Y = "advbench.refusal_rate"


def plot_tradeoff(runs: Sequence[Run], path: Path) -> Path | None:
    """Safety against over-refusal: each run is a path through the plane, one point a round.

    x = benign (MT-Bench) refusal rate, y = AdvBench refusal rate, both per-round subsets; the
    final full-set point (when the run has one) is a star, a gated round an open circle (the model
    kept) with the refused candidate as a cross. The top-left corner is the goal: safe and helpful.
    """
    paths = []
    for run in runs:
        points = [
            (
                row.get("round", i),
                100 * row[TRADEOFF_X],
                100 * row[TRADEOFF_Y],
                bool(row.get("gate.rejected")),
            )
            for i, row in enumerate(run.rounds)
            if isinstance(row.get(TRADEOFF_X), int | float) and isinstance(row.get(TRADEOFF_Y), int | float)
        ]
        if points:
            paths.append((run, points))
    if not paths:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    ax.axvspan(-3, 10, color="C2", alpha=0.06, label="benign refusal <= 10%")
    for i, (run, points) in enumerate(paths):
        color = f"C{i % 10}"
        xs, ys = [p[1] for p in points], [p[2] for p in points]
        ax.plot(xs, ys, linestyle=_DASHES[i % len(_DASHES)], color=color, linewidth=1.5, alpha=0.8)
        ax.scatter(xs, ys, color=color, marker=_MARKERS[i % len(_MARKERS)], s=28, label=_label(run), zorder=3)
        for rnd, x, y, gated in points:
            ax.annotate(str(rnd), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
            if gated:
                ax.scatter([x], [y], facecolors="none", edgecolors="black", s=120, linewidths=1.2, zorder=4)
        for rnd, cx, cy in _refused(run):  # what the gate refused, next to what it kept
            ax.scatter([cx], [cy], marker="x", color=color, s=60, linewidths=1.8, zorder=4)
            ax.annotate(
                f"{rnd} refused",
                (cx, cy),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color=color,
            )
        fx, _ = run.final(TRADEOFF_X)
        fy, is_final = run.final(TRADEOFF_Y)
        if fx is not None and fy is not None and is_final:
            ax.scatter([100 * fx], [100 * fy], color=color, marker="*", s=160, edgecolors="black", zorder=5)
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    ax.scatter([], [], marker="x", color="gray", label="candidate the gate refused")
    ax.set_xlabel("Benign (MT-Bench) refusal rate, % (lower = more helpful)")
    ax.set_ylabel("AdvBench refusal rate, % (higher = safer)")
    ax.set_title("Safety vs over-refusal, per round (numbers = round; star = final full set)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _refused(run: Run) -> list[tuple[object, float, float]]:
    """(round, x, y) of every candidate the gate refused, from its ``candidate.*`` figures."""
    out = []
    for i, row in enumerate(run.rounds):
        cx, cy = row.get(f"candidate.{TRADEOFF_X}"), row.get(f"candidate.{TRADEOFF_Y}")
        if row.get("gate.rejected") and isinstance(cx, int | float) and isinstance(cy, int | float):
            out.append((row.get("round", i), 100 * cx, 100 * cy))
    return out


def plot_spread_curves(runs: Sequence[Run], curve: Curve, path: Path) -> Path | None:
    """One metric per setting: the mean over seeds as a line, min-max as a band."""
    groups = [g for g in group_by_setting(runs) if g.series(curve.key)]
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    scale = 100.0 if curve.percent else 1.0
    for i, g in enumerate(groups):
        points = g.series(curve.key)
        xs = [x for x, _ in points]
        color = f"C{i % 10}"
        ax.plot(
            xs,
            [scale * s.mean for _, s in points],
            marker=_MARKERS[i % len(_MARKERS)],
            color=color,
            label=f"{g.label} (seeds {', '.join(map(str, g.seeds()))})",
        )
        ax.fill_between(
            xs,
            [scale * s.low for _, s in points],
            [scale * s.high for _, s in points],
            color=color,
            alpha=0.18,
        )
    ax.set_title(curve.title + ": mean, band = min-max over seeds", fontsize=10)
    ax.set_xlabel("Round (0 = before training)")
    ax.set_ylabel(curve.ylabel)
    ax.grid(True, alpha=0.3)
    if curve.percent:
        ax.set_ylim(-3, 103)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_spread_tradeoff(runs: Sequence[Run], path: Path) -> Path | None:
    """Per setting: the mean path over seeds (one point a round) and the final point with min-max
    error bars in both directions, so the spread of the trade-off is visible, not just one seed."""
    groups = []
    for g in group_by_setting(runs):
        xs, ys = dict(g.series(TRADEOFF_X)), dict(g.series(TRADEOFF_Y))
        rounds = sorted(set(xs) & set(ys))
        if rounds:
            groups.append((g, [(r, xs[r], ys[r]) for r in rounds]))
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    ax.axvspan(-3, 10, color="C2", alpha=0.06, label="benign refusal <= 10%")
    for i, (g, points) in enumerate(groups):
        color = f"C{i % 10}"
        ax.plot(
            [100 * x.mean for _, x, _ in points],
            [100 * y.mean for _, _, y in points],
            color=color,
            linestyle=_DASHES[i % len(_DASHES)],
            marker=_MARKERS[i % len(_MARKERS)],
            markersize=4,
            label=f"{g.label} (seeds {', '.join(map(str, g.seeds()))})",
        )
        for rnd, x, y in points:
            ax.annotate(
                f"{rnd:g}",
                (100 * x.mean, 100 * y.mean),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
                color=color,
            )
        fx, _ = g.final(TRADEOFF_X)
        fy, is_final = g.final(TRADEOFF_Y)
        if fx is not None and fy is not None:
            ax.errorbar(
                [100 * fx.mean],
                [100 * fy.mean],
                xerr=[[100 * (fx.mean - fx.low)], [100 * (fx.high - fx.mean)]],
                yerr=[[100 * (fy.mean - fy.low)], [100 * (fy.high - fy.mean)]],
                fmt="*" if is_final else "o",
                color=color,
                markersize=12,
                markeredgecolor="black",
                capsize=4,
                zorder=5,
            )
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("Benign (MT-Bench) refusal rate, % (lower = more helpful)")
    ax.set_ylabel("AdvBench refusal rate, % (higher = safer)")
    ax.set_title(
        "Safety vs over-refusal: mean over seeds per round; star = final, bars = min-max", fontsize=10
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
