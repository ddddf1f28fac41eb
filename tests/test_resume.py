"""Resume: a hint on interruption, an error at once when there is nothing to resume, a finished run
left alone; and the ServerApp (also under a bare ``flwr run``) refuses a run dir that holds a run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

import fedrai.assets
import fedrai.runtime
import fedrai.server_app
from fedrai import run_state
from fedrai.checkpoint import Checkpoint, StrategyState
from fedrai.cli import app
from fedrai.run_dir import RunDir
from tests.test_rounds import make_config

runner = CliRunner()


def save_checkpoint(run_dir: Path, server_round: int) -> None:
    adapter = {"m.lora_A.weight": torch.zeros(2, 2)}
    RunDir(run_dir).save_checkpoint(
        Checkpoint(server_round, adapter, "fedavg", StrategyState({}, {"x": 1}), {})
    )


def write_rows(run_dir: Path, rounds: list[int]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = "".join(json.dumps({"round": r, "seconds": 1.0}) + "\n" for r in rounds)
    (run_dir / "metrics.jsonl").write_text(rows, encoding="utf-8")


@pytest.fixture
def experiment(tiny_model_dir: Path, pairs_jsonl: Path, tmp_path: Path) -> Path:
    cfg = make_config(tiny_model_dir, pairs_jsonl, tmp_path / "run")
    path = tmp_path / "exp.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    return path


@pytest.fixture
def no_stack(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record what would have started: asset fetches and simulations."""
    started: list[str] = []
    monkeypatch.setattr(fedrai.assets, "fetch_for", lambda cfg: started.append("fetch"))
    monkeypatch.setattr(fedrai.runtime, "run_simulation", lambda *a, **k: started.append("simulation"))
    return started


def test_run_state_reads_rows_checkpoint_and_summary(tmp_path: Path) -> None:
    empty = run_state.inspect(tmp_path / "none")
    assert not empty.holds_run and empty.checkpoint_round is None and not empty.finished
    write_rows(tmp_path, [0])
    rows_only = run_state.inspect(tmp_path)
    assert rows_only.holds_run and rows_only.checkpoint_round is None
    assert "before its first round finished" in (run_state.resume_refusal(rows_only) or "")
    save_checkpoint(tmp_path, 1)
    assert run_state.inspect(tmp_path).checkpoint_round == 1
    assert run_state.resume_refusal(run_state.inspect(tmp_path)) is None
    (tmp_path / "summary.json").write_text(json.dumps({"rounds": 2}), encoding="utf-8")
    done = run_state.inspect(tmp_path)
    assert done.finished and done.finished_rounds == 2
    assert "already holds a finished run" in (run_state.start_refusal(done, how_to_resume="x") or "")


def test_interrupted_run_says_how_to_resume_and_exits_130(
    experiment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(cfg, run_dir, resume, on_output):
        write_rows(run_dir, [0, 1])
        save_checkpoint(run_dir, 1)
        raise KeyboardInterrupt("signal 15")

    monkeypatch.setattr(fedrai.assets, "fetch_for", lambda cfg: None)
    monkeypatch.setattr(fedrai.runtime, "run_simulation", interrupted)
    result = runner.invoke(app, ["run", str(experiment)])
    assert result.exit_code == 130, result.output
    run_dir = (tmp_path / "run").resolve()
    hint = f"interrupted after round 1 of 2; resume with: fedrai run --resume {run_dir}"
    assert hint in result.output.splitlines(), result.output


def test_interrupted_before_the_first_checkpoint_says_there_is_nothing_to_resume(
    experiment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(cfg, run_dir, resume, on_output):
        write_rows(run_dir, [0])
        raise KeyboardInterrupt

    monkeypatch.setattr(fedrai.assets, "fetch_for", lambda cfg: None)
    monkeypatch.setattr(fedrai.runtime, "run_simulation", interrupted)
    result = runner.invoke(app, ["run", str(experiment)])
    assert result.exit_code == 130
    assert "interrupted before round 1 finished; nothing to resume" in result.output
    assert "--resume" not in result.output


def test_resume_without_a_checkpoint_fails_at_once(experiment: Path, tmp_path: Path, no_stack) -> None:
    run_dir = tmp_path / "run"
    write_rows(run_dir, [0])
    (run_dir / "config.toml").write_text(experiment.read_text(), encoding="utf-8")
    result = runner.invoke(app, ["run", "--resume", str(run_dir)], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert "no checkpoint to resume from" in result.output and len(result.output.strip().splitlines()) == 1
    assert no_stack == []  # not even an asset fetch: nothing started


def test_resume_of_a_finished_run_does_nothing(experiment: Path, tmp_path: Path, no_stack) -> None:
    run_dir = tmp_path / "run"
    write_rows(run_dir, [0, 1, 2])
    save_checkpoint(run_dir, 2)
    (run_dir / "config.toml").write_text(experiment.read_text(), encoding="utf-8")
    (run_dir / "summary.json").write_text(json.dumps({"rounds": 2}), encoding="utf-8")

    def files() -> dict[str, bytes]:  # the writer lock's file aside: the run's own files
        return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != ".fedrai.lock"}

    before = files()
    result = runner.invoke(app, ["run", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "run already finished (2 rounds)" in result.output and "nothing to resume" in result.output
    assert no_stack == []
    assert files() == before


def test_a_new_run_into_a_finished_run_dir_is_refused(experiment: Path, tmp_path: Path, no_stack) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(json.dumps({"rounds": 2}), encoding="utf-8")
    result = runner.invoke(app, ["run", str(experiment)], terminal_width=300)
    assert result.exit_code == 2 and "already holds a finished run" in result.output, result.output
    assert no_stack == []


# --------------------------------------------------------------------------- the ServerApp path
def server_context(run_dir: Path, **extra: object) -> SimpleNamespace:
    return SimpleNamespace(run_config={"config-toml": "", "run-dir": str(run_dir), **extra})


@pytest.fixture
def rounds_run(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    monkeypatch.setattr(
        fedrai.server_app, "run_rounds", lambda grid, cfg, run_dir, resume: calls.append(resume)
    )
    return calls


@pytest.mark.parametrize("leftover", ["metrics.jsonl", "summary.json"])
def test_server_app_refuses_a_run_dir_that_holds_a_run(tmp_path: Path, rounds_run, capsys, leftover) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / leftover).write_text('{"round": 0}\n' if leftover == "metrics.jsonl" else '{"rounds": 3}')
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(fedrai.server_app.RunDirRefused, match="already holds"):
        fedrai.server_app.main(None, server_context(run_dir))
    errors = [line for line in capsys.readouterr().out.splitlines() if "error" in line]
    assert len(errors) == 1 and "add resume=true to --run-config" in errors[0], errors
    assert rounds_run == []
    assert sorted(p.name for p in run_dir.iterdir() if p.name != ".fedrai.lock") == before


def test_server_app_runs_into_an_empty_dir_and_resumes_a_checkpoint(tmp_path: Path, rounds_run) -> None:
    fedrai.server_app.main(None, server_context(tmp_path / "new"))
    write_rows(tmp_path / "old", [0, 1])
    save_checkpoint(tmp_path / "old", 1)
    fedrai.server_app.main(None, server_context(tmp_path / "old", resume=True))
    assert rounds_run == [False, True]


def test_server_app_resume_of_a_finished_run_leaves_it(tmp_path: Path, rounds_run, capsys) -> None:
    write_rows(tmp_path, [0, 1])
    (tmp_path / "summary.json").write_text(json.dumps({"rounds": 1}), encoding="utf-8")
    fedrai.server_app.main(None, server_context(tmp_path, resume=True))
    assert rounds_run == [] and "run already finished (1 round)" in capsys.readouterr().out


def test_server_app_resume_without_a_checkpoint_is_refused(tmp_path: Path, rounds_run) -> None:
    write_rows(tmp_path, [0])
    with pytest.raises(fedrai.server_app.RunDirRefused, match="no checkpoint to resume from"):
        fedrai.server_app.main(None, server_context(tmp_path, resume=True))
    assert rounds_run == []


def test_checkpoint_round_is_read_without_the_tensors(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 3)
    for tensors in tmp_path.glob("checkpoint/tensors-*"):
        tensors.write_bytes(b"damaged")
    assert run_state.inspect(tmp_path).checkpoint_round == 3
    assert run_state.inspect(tmp_path / "x").checkpoint_round is None


def test_deploy_local_refuses_a_run_dir_that_holds_a_run(experiment: Path, tmp_path: Path, no_stack) -> None:
    write_rows(tmp_path / "old", [0, 1])
    result = runner.invoke(app, ["deploy", "local", str(experiment), "--out", str(tmp_path / "old")])
    assert result.exit_code == 2 and "already holds a run; remove it" in result.output, result.output
    assert no_stack == []
