"""Per-round curves, one line per run, written as 150-dpi PNGs that read well in an image viewer.

Legends sit outside the axes and files are saved with a tight bounding box, so neither the data
nor the legend is cut; what the labels, ticks and n say is decided in :mod:`plot_labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedrai.report.plot_labels import point_labels, round_limits, round_ticks, run_labels, sample_note
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


# Distinct marker and dash per run, so runs with equal values stay visible on top of each other.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # the bounding box takes in outside legends


def _set_rounds(ax, rounds: Sequence[float], first_label: str = "Round (0 = before training)") -> None:
    """Whole-number round ticks (also for one round) and the axis label."""
    ticks = round_ticks(rounds)
    if ticks:
        ax.set_xticks(ticks)
        ax.set_xlim(*round_limits(ticks))
    ax.set_xlabel(first_label if 0 in ticks else "Round")


def _title(curve: Curve, runs: Sequence[Run]) -> str:
    note = sample_note(runs, curve.key) if curve.percent else None
    return curve.title + (f"\n{note}" if note else "")


def _draw(ax, runs: Sequence[Run], labels: Sequence[str], curve: Curve) -> bool:
    drawn, finals, rounds = False, False, []
    scale = 100.0 if curve.percent else 1.0
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        xs, ys = run.series(curve.key)
        if not xs:
            continue
        color = f"C{i % 10}"
        ax.plot(
            xs,
            [scale * y for y in ys],
            marker=_MARKERS[i % len(_MARKERS)],
            linestyle=_DASHES[(i // len(_MARKERS) + i) % len(_DASHES)],
            markersize=5,
            linewidth=1.8,
            color=color,
            label=label,
        )
        rounds.extend(xs)
        drawn = True
        final, is_final = run.final(curve.key)
        if curve.percent and is_final and final is not None:  # the larger final set, at the last round
            ax.scatter(
                [xs[-1]], [scale * final], marker="*", s=130, color=color, edgecolors="black", zorder=5
            )
            finals = True
    if finals:
        ax.scatter([], [], marker="*", s=130, color="white", edgecolors="black", label=FINAL_LABEL)
    ax.set_title(_title(curve, runs), fontsize=10)
    _set_rounds(ax, rounds)
    ax.set_ylabel(curve.ylabel)
    ax.grid(True, alpha=0.3)
    if curve.percent:
        ax.set_ylim(-3, 103)
    return drawn


FINAL_LABEL = "final evaluation, larger set"


def plot_curves(runs: Sequence[Run], curve: Curve, path: Path) -> Path | None:
    """One metric across runs; None (no file) when no run has it."""
    if not any(run.series(curve.key)[0] for run in runs):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    _draw(ax, runs, run_labels(runs), curve)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    _save(fig, path)
    plt.close(fig)
    return path


def plot_overview(runs: Sequence[Run], path: Path) -> Path | None:
    """All curves in a two-column grid with one shared legend below."""
    present = [c for c in CURVES if any(run.series(c.key)[0] for run in runs)]
    if not present:
        return None
    plt = _pyplot()
    nrows = (len(present) + 1) // 2
    fig, axes = plt.subplots(nrows, 2, figsize=(12, 4.25 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    labels = run_labels(runs)
    for ax, curve in zip(axes.flat, present, strict=False):
        _draw(ax, runs, labels, curve)
    handles, names = legend_entries(axes.flat)
    fig.tight_layout()
    fig.legend(
        handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=9, frameon=False
    )
    _save(fig, path)
    plt.close(fig)
    return path


def legend_entries(axes) -> tuple[list, list[str]]:
    """Each label once, in the order the axes show them (the final-set star last)."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    names = [n for n in handles if n != FINAL_LABEL] + [n for n in handles if n == FINAL_LABEL]
    return [handles[n] for n in names], names


TRADEOFF_X = "benign.refusal_rate"
TRADEOFF_Y = "advbench.refusal_rate"


def plot_tradeoff(runs: Sequence[Run], path: Path) -> Path | None:
    """Safety against over-refusal: each run is a path through the plane, one point a round.

    x = benign (MT-Bench) refusal rate, y = AdvBench refusal rate, both per-round subsets; the
    final full-set point (when the run has one) is a star, a gated round an open circle (the model
    kept) with the refused candidate as a cross. The top-left corner is the goal: safe and helpful.
    """
    labels = run_labels(runs)
    paths = []
    for run, label in zip(runs, labels, strict=True):
        points = [
            (
                int(row.get("round", i)),
                100 * row[TRADEOFF_X],
                100 * row[TRADEOFF_Y],
                bool(row.get("gate.rejected")),
            )
            for i, row in enumerate(run.rounds)
            if isinstance(row.get(TRADEOFF_X), int | float) and isinstance(row.get(TRADEOFF_Y), int | float)
        ]
        if points:
            paths.append((run, label, points))
    if not paths:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    ax.axvspan(-3, 10, color="C2", alpha=0.06, label="benign refusal <= 10%")
    numbered, gated_any, refused_any, final_any = [], False, False, False
    for i, (run, label, points) in enumerate(paths):
        color = f"C{i % 10}"
        xs, ys = [p[1] for p in points], [p[2] for p in points]
        ax.plot(xs, ys, linestyle=_DASHES[i % len(_DASHES)], color=color, linewidth=1.5, alpha=0.8)
        ax.scatter(xs, ys, color=color, marker=_MARKERS[i % len(_MARKERS)], s=28, label=label, zorder=3)
        numbered.extend((x, y, rnd, color) for rnd, x, y, _ in points)
        for _, x, y, gated in points:
            if gated:
                ax.scatter([x], [y], facecolors="none", edgecolors="black", s=120, linewidths=1.2, zorder=4)
                gated_any = True
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
            refused_any = True
        fx, _ = run.final(TRADEOFF_X)
        fy, is_final = run.final(TRADEOFF_Y)
        if fx is not None and fy is not None and is_final:
            ax.scatter([100 * fx], [100 * fy], color=color, marker="*", s=160, edgecolors="black", zorder=5)
            final_any = True
    for spot in point_labels(numbered):  # each round number once per spot
        ax.annotate(
            spot.text,
            (spot.x, spot.y),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
            color=spot.color,
        )
    for shown, kwargs in tradeoff_keys(gated=gated_any, refused=refused_any, final=final_any):
        ax.scatter([], [], label=shown, **kwargs)
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    runs_drawn = [r for r, _, _ in paths]
    ax.set_xlabel(
        _axis_label("Benign (MT-Bench) refusal rate, % (lower = more helpful)", runs_drawn, TRADEOFF_X)
    )
    ax.set_ylabel(_axis_label("AdvBench refusal rate, % (higher = safer)", runs_drawn, TRADEOFF_Y))
    ax.set_title("Safety vs over-refusal, per round (numbers = rounds)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    _save(fig, path)
    plt.close(fig)
    return path


def tradeoff_keys(*, gated: bool, refused: bool, final: bool) -> list[tuple[str, dict]]:
    """Legend entries for the marks the plane shows; none for a mark that is not drawn."""
    keys = []
    if final:
        keys.append(
            (
                "final evaluation, larger set",
                {"marker": "*", "s": 110, "color": "white", "edgecolors": "black"},
            )
        )
    if gated:
        keys.append(
            (
                "round the gate refused (open circle: the adapter kept)",
                {"marker": "o", "s": 80, "facecolors": "none", "edgecolors": "black"},
            )
        )
    if refused:
        keys.append(("candidate the gate refused", {"marker": "x", "color": "gray"}))
    return keys


def _axis_label(text: str, runs: Sequence[Run], key: str) -> str:
    note = sample_note(runs, key)
    return f"{text}\n{note}" if note else text


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
    note = sample_note(runs, curve.key) if curve.percent else None
    ax.set_title(
        curve.title + ": mean, band = min-max over seeds" + (f"\n{note}" if note else ""), fontsize=10
    )
    _set_rounds(ax, [x for g in groups for x, _ in g.series(curve.key)])
    ax.set_ylabel(curve.ylabel)
    ax.grid(True, alpha=0.3)
    if curve.percent:
        ax.set_ylim(-3, 103)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    _save(fig, path)
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
    numbered: list[tuple[float, float, int, str]] = []
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
        numbered.extend((100 * x.mean, 100 * y.mean, int(rnd), color) for rnd, x, y in points)
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
    for spot in point_labels(numbered):
        ax.annotate(
            spot.text,
            (spot.x, spot.y),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
            color=spot.color,
        )
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    ax.set_xlabel(_axis_label("Benign (MT-Bench) refusal rate, % (lower = more helpful)", runs, TRADEOFF_X))
    ax.set_ylabel(_axis_label("AdvBench refusal rate, % (higher = safer)", runs, TRADEOFF_Y))
    ax.set_title(
        "Safety vs over-refusal: mean over seeds per round; star = final, bars = min-max", fontsize=10
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    _save(fig, path)
    plt.close(fig)
    return path
