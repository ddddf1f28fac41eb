"""The command line: clear errors at start-up, no traceback."""

from pathlib import Path

from typer.testing import CliRunner

from fedrai.cli import _mount_optional, app

_mount_optional()
runner = CliRunner()


def test_bad_config_stops_with_the_key_and_no_traceback(tmp_path: Path):
    exp = tmp_path / "bad.toml"
    exp.write_text("[train]\nlocal_stepz = 3\n", encoding="utf-8")
    result = runner.invoke(app, ["run", str(exp)])
    assert result.exit_code == 2
    assert "train.local_stepz" in result.output and "Traceback" not in result.output


def test_bad_override_value(tmp_path: Path):
    exp = tmp_path / "ok.toml"
    exp.write_text('name = "x"\n', encoding="utf-8")
    result = runner.invoke(app, ["config", "check", str(exp), "--set", "federation.num_rounds=0"])
    assert result.exit_code == 2 and "federation.num_rounds" in result.output


def test_config_check_prints_the_resolved_config(tmp_path: Path):
    exp = tmp_path / "ok.toml"
    exp.write_text('name = "x"\n', encoding="utf-8")
    result = runner.invoke(app, ["config", "check", str(exp), "--set", "strategy.name=fedyogi"])
    assert result.exit_code == 0 and 'name = "fedyogi"' in result.output


def test_resume_needs_a_run_dir(tmp_path: Path):
    result = runner.invoke(app, ["run", "--resume", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not found" in result.output


def test_every_command_is_mounted():
    result = runner.invoke(app, ["--help"])
    for command in ("run", "demo", "eval", "report", "sweep", "assets", "config", "safety"):
        assert command in result.output


def test_error_text_is_printed_literally(tmp_path: Path):
    """A message holding rich markup (``[/v1/control/list-runs]``) is printed as is, not parsed."""
    exp = tmp_path / "ok.toml"
    exp.write_text('name = "x"\n', encoding="utf-8")
    result = runner.invoke(app, ["config", "check", str(exp), "--set", "[/v1/control/list-runs]=1"])
    assert result.exit_code == 2, result.output
    assert "[/v1/control/list" in result.output and "MarkupError" not in repr(result.exception)


def test_demo_ends_with_what_the_guards_did(tmp_path: Path, monkeypatch) -> None:
    """The demo's closing lines: AdvBench and benign refusal before (round 0) and after, from the run's rows."""
    import json
    from types import SimpleNamespace

    import fedrai.assets
    import fedrai.runtime

    rows = [
        {
            "round": 0,
            "advbench.refusal_rate": 0.0625,
            "advbench.n": 16,
            "benign.refusal_rate": 0.0,
            "benign.n": 8,
        },
        {
            "round": 3,
            "advbench.refusal_rate": 0.75,
            "advbench.n": 16,
            "benign.refusal_rate": 0.125,
            "benign.n": 8,
            "gate.rejected": 0,
            "safety.flagged": 70,
        },
    ]

    def fake_simulation(cfg, run_dir, resume, on_output):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return SimpleNamespace(seconds=1.0, log_path=run_dir / "flower.log")

    monkeypatch.setattr(fedrai.runtime, "run_simulation", fake_simulation)
    monkeypatch.setattr(fedrai.assets, "fetch_for", lambda cfg: None)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")], terminal_width=200)
    assert result.exit_code == 0, result.output
    tail = result.output[result.output.index("What the guards did") :]
    assert "AdvBench refusal" in tail and "before   6.2%  after  75.0%  (+68.8 points, 16 prompts)" in tail
    assert "benign MT-Bench refusal" in tail and "after  12.5%" in tail
    assert "guards: filter flagged 70 client rows, the gate refused 0 round(s)" in tail
