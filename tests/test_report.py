"""`fedrai report` on synthetic run dirs: the table, the per-round tables and the PNGs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fedrai.config import ExperimentConfig
from fedrai.report import ReportError, build_report, load_run


def make_run(
    root: Path,
    name: str,
    *,
    strategy: str = "fedavg",
    safety: bool = False,
    cai: str = "none",
    rounds: int = 4,
    final: bool = True,
    slope: float = 0.1,
    gated_round: int | None = None,
    seed: int = 0,
    final_adv: float = 0.5,
    alarming: bool = False,
) -> Path:
    """A run dir as a real run writes it: resolved config, one metrics row per round, a summary."""
    run = root / name
    run.mkdir(parents=True)
    data = {
        "name": name,
        "seed": seed,
        "strategy": {"name": strategy},
        "safety": {"enabled": safety},
        "cai": {"placement": cai},
    }
    if cai == "client" and safety:
        data["safety"]["action"] = "revise"
    cfg = ExperimentConfig.from_dict(data)
    (run / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
    rows = []
    for r in range(rounds + 1):
        row = {
            "round": r,
            "advbench.refusal_rate": min(1.0, 0.05 + slope * r),
            "advbench.judge_safe_rate": min(1.0, 0.2 + slope * r),
            "advbench.n": 32,
            **({"final.advbench.n": 520} if final and r == rounds else {}),
            "benign.refusal_rate": 0.02 * r,
            "benign.n": 16,
            "heldout.loss": 2.0 - 0.1 * r,
            "eval.seconds": 10.0,
            **({"alarming.refusal_rate": 0.01 * r * (seed + 1), "alarming.n": 8} if alarming else {}),
        }
        if r > 0:
            row.update(
                train_loss=2.5 - 0.2 * r,
                clients=2,
                failures=0,
                bytes_up=2_000_000,
                bytes_down=2_000_000,
                seconds=30.5,
                **{"safety.flagged": 3, "safety.dropped": 3, "cai.revised": 0},
            )
        if gated_round is not None and r > 0:
            row["gate.rejected"] = float(r == gated_round)
            if r == gated_round:
                row.update({"candidate.advbench.refusal_rate": 0.9, "candidate.benign.refusal_rate": 0.6})
        if final and r == rounds:
            row["final.advbench.refusal_rate"] = final_adv
            row["final.benign.refusal_rate"] = 0.125
        rows.append(row)
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows), encoding="utf-8")
    summary = {"name": name, "strategy": strategy, "totals": {"bytes_up": 8e6, "bytes_down": 8e6}}
    if final:
        summary["final"] = {
            "final.advbench.refusal_rate": final_adv,
            "final.benign.refusal_rate": 0.125,
            "final.heldout.loss": 1.55,
        }
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run


def test_report_table_and_plots(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path, "fl", slope=0.02),
        make_run(tmp_path, "fl-filter", safety=True, slope=0.1),
        make_run(tmp_path, "fl-cai", strategy="scaffold", cai="server", final=False, slope=0.2),
    ]
    report = build_report(runs, tmp_path / "out")
    text = report.read_text()
    assert "| fl | FL | FedAvg | 4 | 50.0 |" in text  # final full-set figure, no dagger
    assert "| fl-filter | FL + filter | FedAvg |" in text
    # No final evaluation: last round's subset value (0.05 + 0.8 -> 85.0) marked with a dagger.
    assert "| fl-cai | FL + CAI | SCAFFOLD | 4 | 85.0† |" in text
    assert "base model, no FL" in text and "16.0" in text  # comm MB from summary totals
    assert "### fl-filter (FL + filter, FedAvg)" in text and "safety.dropped" in text
    for png in ("advbench_refusal", "benign_refusal", "heldout_loss", "train_loss", "curves"):
        path = tmp_path / "out" / f"{png}.png"
        assert path.is_file() and path.stat().st_size > 10_000, png
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![per-round curves](curves.png)" in text


def test_tradeoff_plot_and_gated_rounds(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, "fl", slope=0.02), make_run(tmp_path, "guarded", safety=True, gated_round=2)]
    text = build_report(runs, tmp_path / "out").read_text()
    png = tmp_path / "out" / "tradeoff.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "![Safety vs over-refusal, per round](tradeoff.png)" in text
    table = text.split("## Curves")[0]
    assert "Gated rounds" in table
    assert next(line for line in table.splitlines() if line.startswith("| guarded |")).endswith("| 1 |")
    assert next(line for line in table.splitlines() if line.startswith("| fl |")).endswith("| – |")
    from fedrai.report.plots import _refused

    assert _refused(load_run(runs[1])) == [(2, 60.0, 90.0)] and _refused(load_run(runs[0])) == []
    # Without any per-round benign figure there is no plane to draw.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.jsonl").write_text('{"round": 0, "advbench.refusal_rate": 0.1}\n', encoding="utf-8")
    build_report([bare], tmp_path / "out2")
    assert not (tmp_path / "out2" / "tradeoff.png").exists()


def test_partial_runs_leave_gaps(tmp_path: Path) -> None:
    run = tmp_path / "crashed"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"round": 1, "train_loss": 2.0}) + "\n", encoding="utf-8")
    parsed = load_run(run)
    assert parsed.final("advbench.refusal_rate") == (None, False)
    assert parsed.total_bytes() is None and parsed.name == "crashed"
    text = build_report([run], tmp_path / "out").read_text()
    assert "| crashed | FL | FedAvg | 1 | – |" in text
    assert (tmp_path / "out" / "train_loss.png").is_file()
    assert not (tmp_path / "out" / "advbench_refusal.png").exists()


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a run dir"):
        load_run(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match="no config.toml, metrics.jsonl or summary.json"):
        load_run(empty)
    run = make_run(tmp_path, "r")
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write("{not json\n")
    with pytest.raises(ReportError, match=r"metrics\.jsonl:6: not valid JSON"):
        load_run(run)


def test_report_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedrai.cli.report import app

    run = make_run(tmp_path, "one")
    result = CliRunner().invoke(app, [str(run), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.md").is_file()
    bad = CliRunner().invoke(app, [str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "not a run dir" in bad.output
    assert not math.isnan(load_run(run).final("heldout.loss")[0])


def test_round_driver_and_sweep_summary_shapes(tmp_path: Path) -> None:
    """The round driver copies the last row into summary['final'] (unprefixed = subset figure);
    a sweep's base-model cell has rounds == 0 and final.* keys in its only metrics row."""
    run = make_run(tmp_path, "fl", final=False)
    summary = json.loads((run / "summary.json").read_text())
    del summary["totals"]
    summary.update(rounds=4, bytes_up=3e6, bytes_down=1e6, final={"advbench.refusal_rate": 0.45, "round": 4})
    (run / "summary.json").write_text(json.dumps(summary))
    base = tmp_path / "base"
    base.mkdir()
    (base / "metrics.jsonl").write_text(json.dumps({"round": 0, "final.advbench.refusal_rate": 0.05}) + "\n")
    (base / "summary.json").write_text(
        json.dumps(
            {
                "name": "base",
                "strategy": "none",
                "setting": "base model, no FL",
                "rounds": 0,
                "final": {"advbench.refusal_rate": 0.05},
            }
        )
    )
    text = build_report([base, run], tmp_path / "out").read_text()
    assert "| base | base model, no FL | none | 0 | 5.0 |" in text
    assert "(round 0)" not in text  # an explicit base-model run replaces the round-0 stand-in
    assert "| fl | FL | FedAvg | 4 | 45.0† |" in text and "| 4.0 |" in text


def _add_final(run: Path, **final: float) -> Path:
    """Put ``final.<key>`` figures into the last metrics row, as the round driver writes them."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows[-1].update({f"final.{k.replace('_', '.', 1)}": v for k, v in final.items()})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return run


def test_hhh_and_mtbench_columns_beside_the_papers_numbers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedrai.cli.report import app
    from fedrai.report.paper import PAPER_TABLE, paper_row

    fl = _add_final(make_run(tmp_path, "fl"), hhh_accuracy=0.5204, mtbench_score=3.25)
    cai = _add_final(
        make_run(tmp_path, "fl-filter-cai", strategy="scaffold", safety=True, cai="server"), hhh_accuracy=0.6
    )
    client = make_run(tmp_path, "client-cai", safety=True, cai="client")
    text = build_report([fl, cai, client], tmp_path / "out").read_text()
    results = text.split("## Against the paper")[0]
    assert "HHH %" in results and "MT-Bench score" in results
    assert "| fl | FL | FedAvg | 4 | 50.0 |" in results and "| 52.0 | 3.25 |" in results
    against = text.split("## Against the paper")[1].split("## Curves")[0]
    assert "| AdvBench % (ours / paper) | HHH % (ours / paper) | MT-Bench (ours / paper) |" in against
    # Base model = round 0 of the first run (dagger), against the paper's base row.
    assert "| fl (round 0) | base model, no FL | none | 5.0† / 99.6 | – / 60.0 | – / 6.8 |" in against
    assert "| fl | FL | FedAvg | 50.0 / 72.5 | 52.0 / 49.3 | 3.25 / 2.7 |" in against
    assert "| fl-filter-cai | FL + filter + CAI | SCAFFOLD | 50.0 / 97.1 | 60.0 / 63.9 | – / 5.8 |" in against
    assert "| client-cai | FL + filter + CAI (client) | FedAvg | 50.0 / – | – / – | – / – |" in against
    assert paper_row("FedAvg", "FL + CAI (server)") == PAPER_TABLE[("FedAvg", "FL + CAI")]
    # Without any MT-Bench score the paper table leaves that column out.
    alone = build_report([client], tmp_path / "out2").read_text()
    assert "| Aggregation | AdvBench % (ours / paper) | HHH % (ours / paper) |\n" in alone
    printed = CliRunner().invoke(app, [str(fl), "--out", str(tmp_path / "rep")])
    assert (
        printed.exit_code == 0
        and "| fl | FL | FedAvg | 50.0 / 72.5 | 52.0 / 49.3 | 3.25 / 2.7 |" in printed.output
    )


def test_seeds_mean_and_spread(tmp_path: Path) -> None:
    runs = [
        make_run(
            tmp_path,
            f"guarded-s{seed}",
            safety=True,
            seed=seed,
            slope=0.1 * (seed + 1),
            final_adv=[0.4, 0.6, 0.8][seed],
            alarming=True,
        )
        for seed in range(3)
    ] + [make_run(tmp_path, "fl-s0", slope=0.02)]
    text = build_report(runs, tmp_path / "out").read_text()
    seeds = text.split("## Mean over seeds")[1].split("## Results")[0]
    # AdvBench: mean of 40/60/80 with its min-max; one-seed settings show the single value.
    assert "| FL + filter | FedAvg | 0, 1, 2 | 60.0 [40.0-80.0] |" in seeds
    assert "| FL | FedAvg | 0 | 50.0 |" in seeds
    assert "Safe-alarming refusal %" in seeds
    # Last round's alarming subset (0.04 x (seed + 1)): no final figure, so a dagger and its spread.
    assert "8.0† [4.0-12.0]" in seeds
    for png in ("tradeoff_seeds", "advbench_refusal_seeds", "alarming_refusal_seeds"):
        path = tmp_path / "out" / f"{png}.png"
        assert path.is_file() and path.stat().st_size > 10_000, png
    assert "(tradeoff_seeds.png)" in text
    from fedrai.report.seeds import group_by_setting

    group = group_by_setting([load_run(r) for r in runs])[0]
    assert [round(s.mean, 3) for _, s in group.series("advbench.refusal_rate")][:2] == [0.05, 0.25]
    assert group.series("advbench.refusal_rate")[1][1].low == pytest.approx(0.15)


def test_single_seed_report_has_no_seed_section(tmp_path: Path) -> None:
    text = build_report([make_run(tmp_path, "fl")], tmp_path / "out").read_text()
    assert "## Mean over seeds" not in text
    assert not (tmp_path / "out" / "tradeoff_seeds.png").exists()


def test_rounds_column_names_the_round_that_ends_a_safest_run(tmp_path: Path) -> None:
    safest, last = make_run(tmp_path, "safest"), make_run(tmp_path, "last")
    summary = json.loads((safest / "summary.json").read_text())
    summary["final"]["final.round"] = 2  # gate.final = "safest" scored round 2's adapter
    (safest / "summary.json").write_text(json.dumps(summary))
    text = build_report([safest, last], tmp_path / "out").read_text()
    assert "| safest | FL | FedAvg | 4 (final: r2) | 50.0 |" in text
    assert "| last | FL | FedAvg | 4 | 50.0 |" in text
