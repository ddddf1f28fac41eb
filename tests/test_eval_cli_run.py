"""`fedrai eval RUN_DIR`: the run's config and last adapter, a plan line, progress, quiet console."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedrai.cli.eval import app
from fedrai.config import ExperimentConfig
from fedrai.evaluation.progress import EvalProgress, format_duration
from fedrai.quiet import routed_warnings

GOALS = [f"Explain how to do harmful thing number {i}" for i in range(12)]
BENIGN = ["How do I bake bread?", "Write a poem about the sea.", "Explain photosynthesis.", "Name a colour."]


@pytest.fixture
def run_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    from fedrai.adapter_export import save_adapter
    from fedrai.model import load_model

    adv = tmp_path / "adv.csv"
    adv.write_text("goal,target\n" + "".join(f"{g},Sure\n" for g in GOALS), encoding="utf-8")
    benign = tmp_path / "question.jsonl"
    benign.write_text("".join(json.dumps({"turns": [b, "and?"]}) + "\n" for b in BENIGN), encoding="utf-8")
    run = tmp_path / "run"
    cfg = ExperimentConfig.from_dict(
        {
            "name": "evalrun",
            "model": {"name_or_path": str(tiny_model_dir)},
            "lora": {"r": 4},
            "data": {"heldout_rows": 0},
            "eval": {
                "advbench_source": str(adv),
                "benign_source": str(benign),
                "advbench_final": 7,
                "benign_final": 3,
                "max_new_tokens": 5,
                "batch_size": 2,
                "hhh_per_round": 0,  # HHH has its own tests; CI does not fetch its 358 MB asset
                "hhh_final": 0,
            },
            "output": {"dir": str(run)},
        }
    )
    run.mkdir()
    (run / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
    model, tokenizer = load_model(cfg.model, cfg.lora, 0)
    for r in (1, 2):
        save_adapter(model, tokenizer, run / "adapters" / f"round-{r}", cfg, {"round": r})
    return run


def test_eval_run_dir_takes_the_runs_config_and_last_adapter(run_dir: Path) -> None:
    result = CliRunner().invoke(app, [str(run_dir)])
    assert result.exit_code == 0, result.output
    out = run_dir / "eval" / "round-2.json"
    data = json.loads(out.read_text())
    assert data["adapter"] == str(run_dir / "adapters" / "round-2")
    assert data["metrics"]["advbench.n"] == 7 and data["metrics"]["benign.n"] == 3
    assert data["eval"]["max_new_tokens"] == 5 and len(data["responses"]) == 10
    lines = result.output.splitlines()
    assert any(
        line.startswith("evaluating 10 prompts (7 AdvBench from ")
        and "up to 5 new tokens each (at most 50 tokens)" in line
        and "batches of 2" in line
        for line in lines
    )
    assert "[eval] 10/10 prompts (100%)" in result.output  # plain progress line: not a terminal
    assert "Loading weights" not in result.output  # library bars and warnings stay off the console


def test_eval_run_dir_round_and_sizes(run_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["--run", str(run_dir), "--round", "1", "--advbench", "4", "--benign", "1"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((run_dir / "eval" / "round-1.json").read_text())
    assert data["adapter"].endswith("round-1") and data["metrics"]["advbench.n"] == 4
    bad = CliRunner().invoke(app, [str(run_dir), "--round", "9"])
    assert bad.exit_code == 2 and "no adapter for round 9 (saved: 1, 2)" in bad.output
    bad = CliRunner().invoke(app, [str(run_dir.parent)])
    assert bad.exit_code == 2 and "not a run dir (no config.toml)" in bad.output


def test_plain_progress_lines_count_and_estimate() -> None:
    stream = io.StringIO()
    progress = EvalProgress(stream, rich=False, every_s=0)
    progress.start(40)
    progress.advance(10)
    progress.advance(30)
    progress.stop()
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "[eval] 10/40 prompts (25%)",
        "[eval] 40/40 prompts (100%)",
    ]
    assert all("ETA" in line for line in lines)
    p = EvalProgress(io.StringIO(), rich=False)
    p.start(100)
    p.done = 25
    assert p.line(30.0).endswith("elapsed 30s  ETA 1m30s")
    assert format_duration(4000) == "1h06m"


def test_rich_progress_in_a_terminal_shows_counts() -> None:
    stream = io.StringIO()
    progress = EvalProgress(stream, rich=True)
    progress.start(8)
    progress.advance(8)
    progress.stop()
    assert "8/8" in stream.getvalue() and "prompts" in stream.getvalue()


def test_routed_warnings_go_to_the_log_with_a_count(tmp_path: Path, capsys) -> None:
    import logging

    log = tmp_path / "w.log"
    with routed_warnings(log) as routed:
        warnings.warn("deprecated thing", FutureWarning, stacklevel=1)
        logging.getLogger("transformers.generation").warning("generation flag ignored")
        # bitsandbytes' CPU backend, imported by peft, says this on every machine without `kernels`
        logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Failed to load CPU gemm_4bit_forward")
    captured = capsys.readouterr()
    for message in ("deprecated thing", "generation flag ignored", "gemm_4bit_forward"):
        assert message not in captured.err + captured.out
        assert message in log.read_text()
    assert routed.count == 3 and routed.note() == f"3 library warnings written to {log}"
