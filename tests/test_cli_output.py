"""What `fedrai run` prints: whole lines and tables when not a terminal, a status line in one."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import fedrai.assets
import fedrai.runtime
from fedrai.cli import app
from fedrai.console import PLAIN_WIDTH, CliConsole
from fedrai.progress import COLUMNS, format_metric, format_round_line
from fedrai.run_progress import PREFIX, RunProgress, parse
from tests.test_resume import experiment  # noqa: F401 - fixture

ROWS = [
    {
        "round": 0,
        "advbench.refusal_rate": 0.0625,
        "advbench.n": 16,
        "benign.refusal_rate": 0.0,
        "seconds": 0.0,
    },
    {
        "round": 1,
        "train_loss": 1.23456,
        "clients": 2,
        "failures": 0,
        "safety.flagged": 12,
        "cai.revised_by_model": 3,
        "cai.fallback_refusals": 1,
        "cai_server.revised_by_model": 5,
        "cai_server.fallback_refusals": 2,
        "advbench.refusal_rate": 0.75,
        "advbench.judge_safe_rate": 0.8125,
        "advbench.n": 16,
        "benign.refusal_rate": 0.125,
        "alarming.refusal_rate": 0.25,
        "heldout.loss": 1.9876,
        "gate.rejected": 0,
        "bytes_up": 1_234_567,
        "seconds": 151.2,
    },
]


def test_round_lines_and_table_are_whole_when_not_a_terminal(
    experiment: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = [format_round_line(r, 1) for r in ROWS]
    events = [
        PREFIX + json.dumps({"event": "round", "round": 1, "sampled": 2, "steps": 8}),
        "(ClientAppActor pid=7) "
        + PREFIX
        + json.dumps({"event": "step", "round": 1, "client": 0, "step": 1}),
    ]

    def fake_simulation(cfg, run_dir, resume, on_output):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
        for line in [f"INFO :      {lines[0]}", *events, f"INFO :      {lines[1]}"]:
            on_output(line)
        return SimpleNamespace(seconds=160.0, log_path=run_dir / "flower.log")

    monkeypatch.setattr(fedrai.runtime, "run_simulation", fake_simulation)
    monkeypatch.setattr(fedrai.assets, "fetch_for", lambda cfg: None)
    monkeypatch.setenv("COLUMNS", "80")  # what CI and `nohup` give rich: it must not wrap at it
    result = CliRunner().invoke(app, ["run", str(experiment)])
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert len(lines[1]) > 200  # a long line: wrapping would have split it
    for line in lines:
        assert line in out, result.output  # whole, on one line
    assert "…" not in result.output and "..." not in result.output  # no cell cut to "tra…"
    header = next(line for line in out if "train loss" in line and "[fedrai]" not in line)
    present = [title for key, title, _ in COLUMNS if any(key in r for r in ROWS)]
    for title in present:
        assert title in header, (title, header)
    row1 = next(line for line in out if "1.235" in line and "[fedrai]" not in line)
    for cell in ("1.235", "75.0", "81.2", "12.5", "25.0", "1.988", "1.23", "151.2"):
        assert cell in row1, (cell, row1)
    assert PREFIX.strip() not in result.output and "clients sampled" not in result.output
    assert "\x1b[" not in result.output  # no colour codes in a log file


def test_console_wraps_only_in_a_terminal() -> None:
    assert CliConsole(file=io.StringIO()).width == PLAIN_WIDTH
    assert CliConsole(file=io.StringIO(), force_terminal=True, width=90).width == 90
    assert CliConsole(file=io.StringIO(), width=50).width == 50  # an explicit width still wins


def test_rates_are_percent_in_round_lines_and_eval() -> None:
    line = format_round_line(ROWS[1], 3)
    assert "AdvBench refusal=75.0%" in line and "benign refusal=12.5%" in line
    assert "judge safe=81.2%" in line and "held-out loss=1.988" in line
    assert format_metric("advbench.refusal_rate", 0.0625) == "6.2%"
    assert format_metric("advbench.refusal_rate_openfedllm", 0.5) == "50.0%"
    assert format_metric("hhh.accuracy", 0.5) == "50.0%"
    assert format_metric("heldout.loss", 1.5) == "1.5000" and format_metric("advbench.n", 16) == "16"
    partial = format_round_line({"round": 3, "gate.kept": "partial", "gate.kept_steps": 4.0}, 4)
    assert partial.endswith("kept=partial  kept server steps=4")


def test_progress_events_fold_into_a_status_line() -> None:
    p = RunProgress(num_rounds=3)
    assert p.describe(now=0.0) == "starting SuperLink and Ray"
    p.update({"event": "evaluate", "round": 0}, now=1.0)
    assert p.describe(now=1.0).startswith("round 0: evaluating the base model")
    p.round_done(0, now=5.0)
    p.update({"event": "round", "round": 1, "sampled": 2, "steps": 8}, now=10.0)
    for event in (
        {"event": "guard", "round": 1, "client": 0, "rows": 50},
        {"event": "step", "round": 1, "client": 0, "step": 3},
        {"event": "step", "round": 1, "client": 1, "step": 2},
        {"event": "step", "round": 1, "client": 0, "step": 2},  # late line: steps never go back
    ):
        p.update(event, now=20.0)
    assert p.describe(now=20.0) == ("round 1/3 · 2 clients sampled · guard 1/2 · local steps 5/16")
    p.update({"event": "evaluate", "round": 1}, now=100.0)
    assert "evaluating" in p.describe(now=100.0)
    p.update({"event": "evaluate", "round": 1, "adapter": "aggregate"}, now=101.0)
    assert "evaluating the aggregate (candidate refused)" in p.describe(now=101.0)
    p.update({"event": "evaluate", "round": 1, "adapter": "partial8"}, now=101.0)
    assert "evaluating the point after 8 server steps (candidate refused)" in p.describe(now=101.0)
    p.round_done(1, now=130.0)  # round 1 took 120 s: 2 rounds left
    assert p.eta(now=130.0) == pytest.approx(240.0)
    assert p.describe(now=130.0) == "round 1/3 done · ETA 4m00s"
    p.update({"event": "round", "round": 2, "sampled": 2, "steps": 8}, now=140.0)
    assert p.eta(now=200.0) == pytest.approx(2 * 120.0 - 60.0)
    p.update({"event": "step", "round": 1, "client": 0, "step": 8}, now=201.0)  # a stale round: ignored
    assert p.steps == {}


def test_progress_lines_are_found_behind_ray_prefixes() -> None:
    event = {"event": "step", "round": 2, "client": 1, "step": 4}
    assert parse("(ClientAppActor pid=6912) " + PREFIX + json.dumps(event)) == event
    assert parse("[fedrai] round 1/3  train loss=1.0") is None
    assert parse(PREFIX + "{not json") is None


def test_a_few_rounds_in_a_narrow_terminal_come_transposed() -> None:
    """In 80 columns the wide table would cut every header to "tra…": a few rounds come one column each."""
    from rich.console import Console

    from fedrai.progress import rounds_table

    rows = [
        {"round": 0, "advbench.refusal_rate": 0.0625, "benign.refusal_rate": 0.0, "heldout.loss": 1.776},
        *(
            {
                "round": r,
                "train_loss": 2.2,
                "clients": 2,
                "failures": 0,
                "safety.flagged": 60,
                "cai_server.fallback_refusals": 8,
                "advbench.refusal_rate": 0.125,
                "benign.refusal_rate": 0.0,
                "alarming.refusal_rate": 0.0625,
                "heldout.loss": 1.73,
                "gate.rejected": 1.0,
                "gate.kept": "aggregate",
                "bytes_up": 3.78e6,
                "seconds": 130.2,
            }
            for r in (1, 2)
        ),
    ]

    def render(table_rows, width):
        console = Console(width=width, force_terminal=False, color_system=None, record=True)
        console.print(rounds_table(table_rows, title="demo", width=width))
        return console.export_text()

    narrow = render(rows, 80)
    assert all(len(line) <= 80 for line in narrow.splitlines())
    assert "safe-alarming refusal %" in narrow and "…" not in narrow
    kept = next(line for line in narrow.splitlines() if line.startswith("│ kept"))
    assert [c.strip() for c in kept.split("│")[1:-1]] == ["kept", "-", "aggregate", "aggregate"]
    assert "gated" not in narrow  # `kept` says more
    wide = render(rows, 400)  # room enough: one row per round, as ever
    assert wide.splitlines()[2].split("┃")[1].strip() == "round"
    many = render(rows * 6, 80)  # too many rounds side by side: the usual table, squeezed
    assert "│ kept" not in many
