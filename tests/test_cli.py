"""The command line: clear errors at start-up, no traceback."""

from pathlib import Path

import click
import tomllib
import typer.main
from typer.testing import CliRunner

from fedrai.cli import app

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


COMMANDS = [
    "assets fetch",
    "assets list",
    "config check",
    "config reference",
    "demo",
    "deploy credentials",
    "deploy local",
    "deploy site",
    "deploy submit",
    "deploy warm-exec",
    "eval",
    "report",
    "run",
    "safety audit",
    "safety score",
    "safety train-filter",
    "sweep",
]


def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[str]:
    if isinstance(command, click.Group):
        return [p for name, sub in command.commands.items() for p in command_paths(sub, (*path, name))]
    return [" ".join(path)]


def test_every_command_is_mounted_once_with_its_help():
    """The command list itself (not a substring of the help), and every command's own --help."""
    assert sorted(command_paths(typer.main.get_command(app))) == COMMANDS
    for path in COMMANDS:
        result = runner.invoke(app, [*path.split(), "--help"], terminal_width=200)
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: root {path} " in result.output or f"Usage: root {path}\n" in result.output, (
            result.output
        )


def test_the_entry_points_run_the_same_app():
    import subprocess
    import sys

    from fedrai import cli

    out = subprocess.run(
        [sys.executable, "-m", "fedrai", "config", "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "reference" in out.stdout, out.stderr
    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["fedrai"] == "fedrai.cli:main" and callable(cli.main)


def test_command_modules_share_helpers_without_a_cycle():
    """Command modules import the shared helpers (fedrai.cli.common), never the package that mounts
    them, and no private name crosses a module boundary."""
    import ast

    package = Path(__file__).parents[1] / "fedrai" / "cli"
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not any(a.name.startswith("_") for a in node.names), (module.name, ast.dump(node))
                if module.name != "__init__.py":
                    assert node.module != "fedrai.cli", (module.name, "imports the package that mounts it")
            elif isinstance(node, ast.Import) and module.name != "__init__.py":
                assert all(a.name != "fedrai.cli" for a in node.names), module.name


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
    adv = next(line for line in tail.splitlines() if line.startswith("  AdvBench refusal"))
    assert adv.split()[-5:] == ["6.2%", "75.0%", "+68.8", "pts", "16"]
    benign = next(line for line in tail.splitlines() if line.startswith("  MT-Bench refusal"))
    assert benign.split()[-5:] == ["0.0%", "12.5%", "+12.5", "pts", "8"]
    assert "  filter      flagged 70 client rows (summed over rounds)" in tail
    assert "  gate        kept the candidate in round 3" in tail
