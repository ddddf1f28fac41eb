"""``report.md`` and PNG curves comparing runs side by side, in the shape of the paper's table.

Rates are shown in percent like the paper (AdvBench = refusal rate). A headline figure comes from
the final full-set evaluation when the run has one; otherwise from the last round's subset, marked
with a dagger so the two are never confused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fedrai.report.paper import paper_row
from fedrai.report.plots import (
    CURVES,
    plot_curves,
    plot_overview,
    plot_spread_curves,
    plot_spread_tradeoff,
    plot_tradeoff,
)
from fedrai.report.runs import Run, load_run
from fedrai.report.screening import screening_section
from fedrai.report.seeds import group_by_setting, has_seeds

# (header, metric key, kind): kind "pct" shows x100 with one decimal, "num" three decimals.
TABLE_COLUMNS: list[tuple[str, str, str]] = [
    ("AdvBench refusal %", "advbench.refusal_rate", "pct"),
    ("AdvBench judge-safe %", "advbench.judge_safe_rate", "pct"),
    ("AdvBench refusal % (OpenFedLLM rule)", "advbench.refusal_rate_openfedllm", "pct"),
    ("Benign refusal % (MT-Bench)", "benign.refusal_rate", "pct"),
    ("HHH %", "hhh.accuracy", "pct"),
    ("MT-Bench score", "mtbench.score", "score"),
    ("Safe-alarming refusal %", "alarming.refusal_rate", "pct"),
    ("Held-out loss", "heldout.loss", "num"),
]

ROUND_COLUMNS: list[tuple[str, str, str]] = [
    ("train loss", "train_loss", "num"),
    ("AdvBench refusal %", "advbench.refusal_rate", "pct"),
    ("judge-safe %", "advbench.judge_safe_rate", "pct"),
    ("benign refusal %", "benign.refusal_rate", "pct"),
    ("HHH %", "hhh.accuracy", "pct"),
    ("MT-Bench", "mtbench.score", "score"),
    ("safe-alarming refusal %", "alarming.refusal_rate", "pct"),
    ("held-out loss", "heldout.loss", "num"),
    ("clients", "clients", "int"),
    ("failures", "failures", "int"),
    ("gated", "gate.rejected", "int"),
    ("MB up", "bytes_up", "mb"),
    ("MB down", "bytes_down", "mb"),
    ("seconds", "seconds", "sec"),
]


def build_report(run_dirs: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Read the runs, write ``report.md`` and the curve PNGs into ``out_dir``; return the report path."""
    if not run_dirs:
        raise ValueError("give at least one run dir")
    runs = [load_run(d) for d in run_dirs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images: list[tuple[str, Path]] = []
    for curve in CURVES:
        png = plot_curves(runs, curve, out / f"{curve.file}.png")
        if png is not None:
            images.append((curve.title, png))
    overview = plot_overview(runs, out / "curves.png")
    tradeoff = plot_tradeoff(runs, out / "tradeoff.png")
    if tradeoff is not None:
        images.insert(0, ("Safety vs over-refusal, per round", tradeoff))
    if has_seeds(runs):
        spread_png = plot_spread_tradeoff(runs, out / "tradeoff_seeds.png")
        if spread_png is not None:
            images.insert(0, ("Safety vs over-refusal, mean and min-max over seeds", spread_png))
        for curve in CURVES:
            png = plot_spread_curves(runs, curve, out / f"{curve.file}_seeds.png")
            if png is not None:
                images.append((curve.title + ", mean and min-max over seeds", png))
    report = out / "report.md"
    report.write_text(render_markdown(runs, images, overview, out), encoding="utf-8")
    return report


def render_markdown(
    runs: Sequence[Run], images: Sequence[tuple[str, Path]], overview: Path | None, out: Path
) -> str:
    lines = ["# fedrai report", ""]
    lines += [f"{len(runs)} run(s): " + ", ".join(f"`{r.path}`" for r in runs), ""]
    if has_seeds(runs):
        lines += ["## Mean over seeds", ""]
        lines += _seed_table(runs)
        lines += [
            "",
            "Each cell: mean over the seeds, then [min-max]. † as below (a per-round subset figure).",
            "",
        ]
    lines += ["## Results", ""]
    lines += _comparison_table(runs)
    lines += [
        "",
        "AdvBench refusal: the llm-attacks rule (29 phrases, case-sensitive substring). Judge-safe: the "
        "safety filter on (prompt, response). Benign refusal: the same rule on MT-Bench first turns; "
        "lower is better (over-refusal). Communication: adapter bytes up + down over the whole run.",
        "† from a per-round subset: round 0's for the base-model row, else the last round's "
        "(the run has no final full-set evaluation of that metric). Gated rounds: rounds whose new global "
        "adapter the server's gate refused (it over-refused benign prompts or lost held-out loss), keeping the "
        "clients' aggregate or the previous one. `final: rN`: the final figures score round N's adapter, the "
        'safest the gate accepted (`gate.final = "safest"`).',
        "",
    ]
    lines += ["## Against the paper", ""]
    lines += paper_comparison(runs)
    lines += [
        "",
        "Ours / the paper's, for the same aggregation and setting (Llama-3.1-8B-Instruct, 50 rounds; "
        "`fedrai/report/paper.py`). AdvBench: refusal %; HHH: BIG-bench hhh_alignment accuracy % "
        "(summed log-likelihood, 221 examples when final); MT-Bench: LLM-judge score 1-10 (single-answer "
        "grading). – = not measured, or no such row in the paper. † as above.",
    ]
    lines.append("")
    if overview is not None or images:
        lines += ["## Curves", ""]
        if overview is not None:
            lines += [f"![per-round curves]({overview.relative_to(out)})", ""]
        for title, png in images:
            if png.name in ("tradeoff.png", "tradeoff_seeds.png"):  # the picture a reader needs first
                lines += [f"![{title}]({png.relative_to(out)})", ""]
        for title, png in images:
            lines += [f"- [{title}]({png.relative_to(out)})"]
        lines.append("")
    lines += screening_section(runs, out)
    lines += ["## Per-round metrics", ""]
    for run in runs:
        lines += [f"### {run.name} ({run.setting}, {run.strategy})", ""]
        lines += _round_table(run)
        lines.append("")
    return "\n".join(lines)


def _comparison_table(runs: Sequence[Run]) -> list[str]:
    # Columns no run has are left out (e.g. judge-safe when no run used the judge scorer).
    columns = [
        c
        for c in TABLE_COLUMNS
        if c[1] == "advbench.refusal_rate" or any(r.final(c[1])[0] is not None for r in runs)
    ]
    header = (
        ["Run", "Setting", "Aggregation", "Rounds"] + [c[0] for c in columns] + ["AdvBench n", "Comm. MB"]
    )
    gate_column = any(r.gated_rounds() is not None for r in runs)
    if gate_column:
        header.append("Gated rounds")
    rows: list[list[str]] = []
    # Without an explicit base-model run, round 0 of the first run stands in for it.
    has_base_run = any(r.is_base_model for r in runs)
    base = next((r for r in runs if r.round_value(0, "advbench.refusal_rate") is not None), None)
    base = None if has_base_run else base
    if base is not None:
        # Round 0 is the untouched base model: the paper's "none / base model, no FL" row.
        cells = [f"{base.name} (round 0)", "base model, no FL", "none", "0"]
        for _, key, kind in columns:
            value = base.round_value(0, key)
            cells.append("–" if value is None else _fmt(value, kind) + "†")
        n = base.round_value(0, "advbench.n")
        rows.append([*cells, "–" if n is None else _fmt(n, "int"), "0.0"] + (["–"] if gate_column else []))
    for run in runs:
        cells = [run.name, run.setting, run.strategy, _rounds_cell(run)]
        for _, key, kind in columns:
            value, is_final = run.final(key)
            cells.append("–" if value is None else _fmt(value, kind) + ("" if is_final else "†"))
        n, _ = run.final("advbench.n")
        total = run.total_bytes()
        cells += ["–" if n is None else _fmt(n, "int"), "–" if total is None else f"{total / 1e6:.1f}"]
        if gate_column:
            gated = run.gated_rounds()
            cells.append("–" if gated is None else str(gated))
        rows.append(cells)
    return _md_table(header, rows)


def _rounds_cell(run: Run) -> str:
    """Rounds run, and the round whose adapter the final figures score when it is not the last
    (``gate.final = "safest"``)."""
    rounds = run.num_rounds()
    final_round, recorded = run.final("round")
    if recorded and final_round is not None and int(final_round) != rounds:
        return f"{rounds} (final: r{int(final_round)})"
    return str(rounds)


PAPER_COLUMNS: list[tuple[str, str, str, str]] = [
    ("AdvBench %", "advbench.refusal_rate", "pct", "advbench"),
    ("HHH %", "hhh.accuracy", "pct", "hhh"),
    ("MT-Bench", "mtbench.score", "score", "mtbench"),
]


def paper_comparison(runs: Sequence[Run]) -> list[str]:
    """AdvBench, HHH and (when any run has it) MT-Bench, ours beside the paper's, one row per run."""
    columns = [
        c for c in PAPER_COLUMNS if c[3] != "mtbench" or any(r.final(c[1])[0] is not None for r in runs)
    ]
    header = ["Run", "Setting", "Aggregation"] + [f"{c[0]} (ours / paper)" for c in columns]
    rows: list[list[str]] = []
    has_base_run = any(r.is_base_model for r in runs)
    base = None if has_base_run else next((r for r in runs if r.rounds), None)
    if base is not None:
        ref = paper_row("none", "base model, no FL")
        cells = [f"{base.name} (round 0)", "base model, no FL", "none"]
        for _, key, kind, attr in columns:
            value = base.round_value(0, key)
            ours = "–" if value is None else _fmt(value, kind) + "†"
            cells.append(f"{ours} / {_paper_value(ref, attr)}")
        rows.append(cells)
    for run in runs:
        strategy = "none" if run.is_base_model else run.strategy
        ref = paper_row(strategy, run.setting)
        cells = [run.name, run.setting, strategy]
        for _, key, kind, attr in columns:
            value, is_final = run.final(key)
            ours = "–" if value is None else _fmt(value, kind) + ("" if is_final else "†")
            cells.append(f"{ours} / {_paper_value(ref, attr)}")
        rows.append(cells)
    return _md_table(header, rows)


def _seed_table(runs: Sequence[Run]) -> list[str]:
    groups = group_by_setting(runs)
    columns = [c for c in TABLE_COLUMNS if any(g.final(c[1])[0] is not None for g in groups)]
    header = ["Setting", "Aggregation", "Seeds"] + [c[0] for c in columns]
    rows = []
    for g in groups:
        cells = [g.setting, g.strategy, ", ".join(str(s) for s in g.seeds())]
        for _, key, kind in columns:
            sp, is_final = g.final(key)
            if sp is None:
                cells.append("–")
                continue
            mark = "" if is_final else "†"
            text = _fmt(sp.mean, kind) + mark
            if sp.n > 1:
                text += f" [{_fmt(sp.low, kind)}-{_fmt(sp.high, kind)}]"
            cells.append(text)
        rows.append(cells)
    return _md_table(header, rows)


def _paper_value(ref: object, attr: str) -> str:
    if ref is None:
        return "–"
    value = getattr(ref, attr)
    return f"{value:.1f}"


def _round_table(run: Run) -> list[str]:
    if not run.rounds:
        return ["(no metrics.jsonl rows)"]
    cols = [c for c in ROUND_COLUMNS if any(c[1] in row for row in run.rounds)]
    guard_keys = sorted({k for row in run.rounds for k in row if k.startswith(("safety.", "cai."))})
    header = ["round"] + [c[0] for c in cols] + guard_keys
    rows = []
    for i, row in enumerate(run.rounds):
        cells = [str(row.get("round", i))]
        cells += [_fmt(row.get(key), kind) if row.get(key) is not None else "–" for _, key, kind in cols]
        cells += [_fmt(row.get(k), "auto") if row.get(k) is not None else "–" for k in guard_keys]
        rows.append(cells)
    return _md_table(header, rows)


def _fmt(value: object, kind: str) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if value != value:  # NaN
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "mb":
        return f"{value / 1e6:.2f}"
    if kind in ("sec", "score"):
        return f"{value:.1f}" if kind == "sec" else f"{value:.2f}"
    if kind == "int" or (kind == "auto" and float(value).is_integer()):
        return str(int(value))
    return f"{value:.3f}"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return out
