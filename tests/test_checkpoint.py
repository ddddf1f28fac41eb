"""Checkpoints hold no code: safetensors + JSON, planted pickles refused unread, versions checked."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fedrai.checkpoint import Checkpoint, CheckpointError, StrategyState
from fedrai.cli import app
from fedrai.run_dir import RunDir
from tests.test_rounds import make_config, run


class Payload:
    """Unpickling this writes ``marker``: what a crafted checkpoint would do to a resuming user."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_the_payload_would_run_if_unpickled(tmp_path):
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.is_file()  # so a missing marker below means nothing was unpickled


def sample(server_round: int = 2) -> Checkpoint:
    rng = np.random.default_rng(0)
    keys = ["m.q.lora_A.weight", "m.q.lora_B.weight"]
    return Checkpoint(
        server_round,
        {k: torch.randn(3, 2, dtype=torch.float16) for k in keys},
        "fedadam",
        StrategyState(
            {g: {k: rng.normal(size=(3, 2)) for k in keys} for g in ("current_arrays", "m_t", "v_t")},
            {"note": [1, 2]},
        ),
        {
            "gate": {
                "best_benign_refusal": float("inf"),
                "best_heldout_loss": 1.5,
                "accepted_eval": {},
                "rejected_rounds": 1,
            }
        },
    )


def test_save_and_load_round_trip_exactly(tmp_path):
    rd = RunDir(tmp_path)
    first = sample(1)
    rd.save_checkpoint(first)
    ckpt = sample(2)
    rd.save_checkpoint(ckpt)
    assert sorted(p.name for p in rd.checkpoint.iterdir()) == ["state.json", "tensors-r000002.safetensors"]
    got = rd.load_checkpoint()
    assert (got.round, got.strategy_name, got.extra, got.strategy.scalars) == (
        2,
        "fedadam",
        ckpt.extra,
        {"note": [1, 2]},
    )
    assert list(got.adapter) == list(ckpt.adapter)
    assert all(
        torch.equal(got.adapter[k], v) and got.adapter[k].dtype == v.dtype for k, v in ckpt.adapter.items()
    )
    for g, arrays in ckpt.strategy.tensors.items():
        assert all(np.array_equal(got.strategy.tensors[g][k], a) for k, a in arrays.items())
    manifest = json.loads((rd.checkpoint / "state.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["fedrai_version"]


def plant(tmp_path: Path, how: str, marker: Path) -> RunDir:
    rd = RunDir(tmp_path / "run")
    if how == "legacy state.pt":
        rd.checkpoint.mkdir(parents=True)
        torch.save(
            {"round": 1, "adapter": {}, "strategy": Payload(marker), "extra": {}}, rd.checkpoint / "state.pt"
        )
        return rd
    rd.save_checkpoint(sample())
    manifest_path = rd.checkpoint / "state.json"
    tensors = rd.checkpoint / "tensors-r000002.safetensors"
    if how == "pickle as state.json":
        manifest_path.write_bytes(pickle.dumps(Payload(marker)))
        return rd
    if how == "pickle as tensors":
        tensors.write_bytes(pickle.dumps({"adapter": Payload(marker)}))
    elif how == "torch file as tensors":
        torch.save({"adapter": Payload(marker)}, tensors)
    manifest = json.loads(manifest_path.read_text())
    manifest["tensors_sha256"] = hashlib.sha256(tensors.read_bytes()).hexdigest()  # a careful attacker
    manifest_path.write_text(json.dumps(manifest))
    return rd


HOW = ["legacy state.pt", "pickle as state.json", "pickle as tensors", "torch file as tensors"]
MESSAGES = {
    "legacy state.pt": r"older fedrai \(pickle format\).*cannot be resumed safely; start a new run",
    "pickle as state.json": "not a fedrai checkpoint",
    "pickle as tensors": "not a safetensors file",
    "torch file as tensors": "not a safetensors file",
}


@pytest.mark.parametrize("how", HOW)
def test_a_planted_pickle_is_refused_unread(tmp_path, how):
    marker = tmp_path / "pwned"
    rd = plant(tmp_path, how, marker)
    with pytest.raises(CheckpointError, match=MESSAGES[how]):
        rd.load_checkpoint()
    assert not marker.exists()


@pytest.mark.parametrize("how", ["legacy state.pt", "pickle as tensors"])
def test_resume_refuses_a_planted_pickle_before_anything_runs(
    tiny_model_dir, pairs_jsonl, tmp_path, monkeypatch, how
):
    marker = tmp_path / "pwned"
    rd = plant(tmp_path, how, marker)
    cfg = make_config(tiny_model_dir, pairs_jsonl, rd.path, "strategy.name=fedadam")
    rd.config.write_text(cfg.to_toml(), encoding="utf-8")
    started = []
    monkeypatch.setattr("fedrai.runtime.run_simulation", lambda *a, **k: started.append(1))
    result = CliRunner().invoke(app, ["run", "--resume", str(rd.path)])
    assert result.exit_code == 2, result.output
    assert "error" in result.output and ("pickle format" in result.output or "safetensors" in result.output)
    assert not started and not marker.exists()
    # the server app's own resume path refuses it too
    with pytest.raises(CheckpointError):
        run(cfg, resume=True)
    assert not marker.exists()


def test_a_checkpoint_from_a_newer_fedrai_or_another_strategy_is_refused(tmp_path):
    rd = RunDir(tmp_path)
    rd.save_checkpoint(sample())
    path = rd.checkpoint / "state.json"
    manifest = json.loads(path.read_text())
    with pytest.raises(CheckpointError, match="'fedadam' strategy state.*strategy.name = 'fedavgm'"):
        rd.load_checkpoint().check_strategy("fedavgm", rd.checkpoint)
    path.write_text(json.dumps({**manifest, "schema_version": 99, "fedrai_version": "9.0"}))
    with pytest.raises(CheckpointError, match="schema version 99 .*fedrai 9.0.*upgrade fedrai"):
        rd.load_checkpoint()
    path.write_text(json.dumps({**manifest, "tensors_file": "../../etc/passwd"}))
    with pytest.raises(CheckpointError, match="tensors_file"):
        rd.load_checkpoint()


def test_config_and_summary_carry_versions_and_a_newer_schema_is_refused(tmp_path):
    from fedrai.config import ConfigError, ExperimentConfig
    from fedrai.report.runs import ReportError, load_run

    text = ExperimentConfig().to_toml()
    assert "[fedrai]" in text and "schema_version = 1" in text
    assert ExperimentConfig.from_toml_text(text) == ExperimentConfig()
    newer = text.replace("schema_version = 1", "schema_version = 7")
    with pytest.raises(ConfigError, match="schema version 7.*upgrade fedrai"):
        ExperimentConfig.from_toml_text(newer)
    (tmp_path / "config.toml").write_text(text)
    (tmp_path / "summary.json").write_text(json.dumps({"schema_version": 7, "fedrai_version": "3.0"}))
    with pytest.raises(ReportError, match="summary.json.*schema version 7.*fedrai 3.0"):
        load_run(tmp_path)
