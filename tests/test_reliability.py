"""Errors first, stack later: a bad model, data file or output dir fails in about a second, in one
line, exit 2, before any SuperLink or Ray starts, and leaves no run dir behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fedrai.runtime
from fedrai.cli import app
from tests.conftest import write_jsonl

runner = CliRunner()


def tiny_experiment(tmp: Path, model_dir: Path | str, *, data: Path | None = None, rounds: int = 2) -> Path:
    """A 3-client experiment on the tiny model (fast enough for a real Flower + Ray run)."""
    if data is None:
        data = write_jsonl(
            tmp / "pairs.jsonl",
            [{"prompt": f"How do I bake loaf {i}?", "response": f"Knead and bake ({i})."} for i in range(30)],
        )
    adv = write_jsonl(tmp / "adv.jsonl", [{"prompt": f"Explain how to do harm {i}"} for i in range(6)])
    benign = write_jsonl(
        tmp / "benign.jsonl", [{"prompt": f"Write a poem about the sea {i}"} for i in range(4)]
    )
    exp = tmp / "exp.toml"
    exp.write_text(
        f"""
name = "tiny"
seed = 3
[model]
name_or_path = "{model_dir}"
max_seq_length = 64
[lora]
r = 4
alpha = 8
dropout = 0.0
[data]
source = "{data}"
heldout_rows = 6
[federation]
num_clients = 3
num_rounds = {rounds}
[strategy]
min_train_clients = 3
min_available_clients = 3
[train]
local_steps = 2
batch_size = 2
learning_rate = 0.01
[eval]
advbench_source = "{adv}"
advbench_per_round = 3
advbench_final = 6
benign_source = "{benign}"
benign_per_round = 2
max_new_tokens = 4
batch_size = 4
hhh_per_round = 0
hhh_final = 0
""",
        encoding="utf-8",
    )
    return exp


def _bad_csv(tmp: Path) -> Path:
    path = tmp / "wrong.csv"
    path.write_text("question,answer\nhow?,like this\n", encoding="utf-8")
    return path


def _not_utf8(tmp: Path) -> Path:
    path = tmp / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "caf\xe9?", "response": "ol\xe9"}\n' * 5)
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.jsonl"
    path.write_bytes(b"")
    return path


# (what is wrong, how to make the experiment, words the one-line error must hold)
BAD_RUNS = {
    "missing model dir": (lambda tmp, model: tiny_experiment(tmp, tmp / "no-such-model"), "no such model"),
    "model dir without config": (
        lambda tmp, model: tiny_experiment(tmp, tmp.joinpath("empty-model").resolve()),
        "no config.json",
    ),
    "missing data file": (
        lambda tmp, model: tiny_experiment(tmp, model, data=tmp / "nope.jsonl"),
        "nope.jsonl",
    ),
    "empty data file": (lambda tmp, model: tiny_experiment(tmp, model, data=_empty(tmp)), "empty.jsonl"),
    "non-UTF-8 data file": (
        lambda tmp, model: tiny_experiment(tmp, model, data=_not_utf8(tmp)),
        "latin1.jsonl",
    ),
    "CSV without the expected columns": (
        lambda tmp, model: tiny_experiment(tmp, model, data=_bad_csv(tmp)),
        "wrong.csv",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_run_fails_before_the_stack_starts(
    case: str, tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty-model").mkdir()
    make, needle = BAD_RUNS[case]
    exp = make(tmp_path, tiny_model_dir)

    def no_stack(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Flower stack was started")

    monkeypatch.setattr(fedrai.runtime, "run_simulation", no_stack)
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["run", str(exp), "--out", str(run_dir)], terminal_width=400)
    out = result.output.strip()
    assert result.exit_code == 2, (out, result.exception)
    assert out.startswith("error:") and len(out.splitlines()) == 1 and needle in out, out
    assert not run_dir.exists()


def test_unwritable_output_dir(tmp_path: Path, tiny_model_dir: Path) -> None:
    exp = tiny_experiment(tmp_path, tiny_model_dir)
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    result = runner.invoke(app, ["run", str(exp), "--out", str(blocker / "run")], terminal_width=400)
    assert result.exit_code == 2 and "a-file is not a directory" in result.output, result.output


def test_a_real_fedrai_process_fails_fast_without_a_run_dir(tmp_path: Path, tiny_model_dir: Path) -> None:
    exp = tiny_experiment(tmp_path, tiny_model_dir, data=_not_utf8(tmp_path))
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "fedrai", "run", str(exp), "--out", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},
    )
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2 and len(out.splitlines()) == 1 and "latin1.jsonl" in out, out
    assert not run_dir.exists()  # the stack writes its logs there: it never started
