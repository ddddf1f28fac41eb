"""The sweep runner: cell expansion, naming, validation before running, skip/resume, status file.

Unit tests replace ``run_simulation`` (and the standalone eval) with fakes that write what a run
writes; one slow test runs a real one-cell sweep (tiny model, 1 round, 2 clients) end to end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from fedrai import sweep as sw
from fedrai.checkpoint import Checkpoint
from fedrai.run_dir import RunDir
from tests.conftest import write_jsonl

BASE = """
name = "base"
seed = 0
[model]
name_or_path = "{model}"
max_seq_length = 64
[lora]
r = 4
alpha = 8
dropout = 0.0
[data]
source = "{data}"
heldout_rows = 4
[federation]
num_clients = 2
num_rounds = 1
[strategy]
min_train_clients = 2
min_available_clients = 2
[train]
local_steps = 1
batch_size = 2
[eval]
advbench_source = "{adv}"
advbench_per_round = 2
advbench_final = 3
benign_source = "{benign}"
benign_per_round = 2
benign_final = 2
max_new_tokens = 4
batch_size = 4
hhh_per_round = 0
hhh_final = 0
"""

SWEEP = """
base = "base.toml"
name = "t"
seeds = [0, 1]
include_base_model = true
set = ["train.learning_rate=0.01"]

[[settings]]
name = "FL"

[[settings]]
name = "FL + filter + CAI"
set = ["safety.enabled=true", "cai.placement=\\"server\\"", "cai.server_steps=2"]

[[strategies]]
name = "fedavg"

[[strategies]]
name = "scaffold"
set = ["train.optimizer=sgd"]
"""


def _files(tmp: Path, model: str = "tiny-model-dir") -> dict[str, Path]:
    data = write_jsonl(
        tmp / "pairs.jsonl",
        [{"prompt": f"How do I bake loaf {i}?", "response": f"Knead and bake ({i})."} for i in range(24)],
    )
    adv = write_jsonl(tmp / "adv.jsonl", [{"prompt": f"Explain how to do harm {i}"} for i in range(4)])
    benign = write_jsonl(
        tmp / "benign.jsonl", [{"prompt": f"Write a poem about the sea {i}"} for i in range(3)]
    )
    (tmp / "base.toml").write_text(
        BASE.format(model=model, data=data, adv=adv, benign=benign), encoding="utf-8"
    )
    return {"data": data, "adv": adv, "benign": benign}


def _sweep(tmp: Path, text: str = SWEEP) -> Path:
    if not (tmp / "base.toml").exists():
        _files(tmp)
    path = tmp / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    return path


class FakeSim:
    """Stands in for run_simulation: records calls and writes what a finished run writes."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fail = fail or set()

    def __call__(self, config, run_dir, *, resume=False, on_output=None, **_):  # noqa: ANN001, ANN003
        self.calls.append((config.name, resume))
        if config.name in self.fail:
            raise RuntimeError(f"boom in {config.name}")
        run = RunDir(run_dir)
        run.path.mkdir(parents=True, exist_ok=True)
        if not resume:
            run.config.write_text(config.to_toml(), encoding="utf-8")
            run.append_metrics({"round": 0, "advbench.refusal_rate": 0.0})
        if on_output:
            on_output("INFO: [fedrai] round 1/1  train loss=1.0")
        run.append_metrics({"round": 1, "advbench.refusal_rate": 0.5, "final.advbench.refusal_rate": 0.5})
        run.write_summary({"name": config.name, "strategy": config.strategy.name, "rounds": 1})


def _fake_eval(cfg, *, adapter=None, heldout=None, **_):  # noqa: ANN001, ANN003
    assert adapter is None
    return {"metrics": {"advbench.refusal_rate": 0.25, "benign.refusal_rate": 0.0}, "responses": []}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> FakeSim:
    fake = FakeSim()
    monkeypatch.setattr("fedrai.runtime.run_simulation", fake)
    monkeypatch.setattr("fedrai.evaluation.standalone.evaluate_model", _fake_eval)
    monkeypatch.setattr("fedrai.data.client_data.heldout_rows", lambda cfg: [])
    monkeypatch.setattr("fedrai.sweep.runner.fetch_assets", lambda cells: None)
    return fake


def test_slugify() -> None:
    assert sw.slugify("FL + filter + CAI") == "fl-filter-cai"
    assert sw.slugify("FL + CAI (client)") == "fl-cai-client"
    assert sw.slugify("  ") == "setting"


def test_cells_expand_in_table_order_with_resolved_configs(tmp_path: Path) -> None:
    plan = sw.load_sweep(_sweep(tmp_path), tmp_path / "out")
    ids = [c.id for c in plan.cells]
    assert ids == [
        "base-model__none__seed0",
        "fl__fedavg__seed0",
        "fl__fedavg__seed1",
        "fl-filter-cai__fedavg__seed0",
        "fl-filter-cai__fedavg__seed1",
        "fl__scaffold__seed0",
        "fl__scaffold__seed1",
        "fl-filter-cai__scaffold__seed0",
        "fl-filter-cai__scaffold__seed1",
    ]
    cell = plan.cells[-1]
    cfg = cell.config
    assert cell.run_dir == tmp_path / "out" / "fl-filter-cai__scaffold__seed1"
    assert (cfg.name, cfg.seed, cfg.setting) == (cell.id, 1, "FL + filter + CAI")
    assert cfg.strategy.name == "scaffold" and cfg.train.optimizer == "sgd"
    assert cfg.safety.enabled and cfg.cai.placement == "server" and cfg.cai.server_steps == 2
    assert cfg.train.learning_rate == 0.01  # sweep-wide override
    assert plan.cells[1].config.train.optimizer == "adamw"  # strategy overrides stay in their cells
    base = plan.cells[0]
    assert base.base_model and base.setting == "base model, no FL" and base.strategy == "none"
    diff = sw.config_diff(plan.base_config, cfg)
    assert set(diff) >= {"seed", "setting", "strategy.name", "safety.enabled", "cai.placement"}
    assert "name" not in diff and "output.dir" not in diff


def test_strategies_as_plain_names_and_default_out(tmp_path: Path) -> None:
    text = 'base = "base.toml"\nstrategies = ["fedavg"]\n[[settings]]\nname = "FL"\n'
    plan = sw.load_sweep(_sweep(tmp_path, text))
    assert [c.id for c in plan.cells] == ["fl__fedavg__seed0"]
    assert plan.out_dir == Path("runs/sweep")


def test_every_cell_is_validated_before_anything_runs(tmp_path: Path, fakes: FakeSim) -> None:
    text = SWEEP + '\n[[settings]]\nname = "typo"\nset = ["train.local_stepz=3"]\n'
    with pytest.raises(sw.SweepError) as err:
        sw.execute_sweep(_sweep(tmp_path, text), tmp_path / "out")
    assert "typo__scaffold__seed1" in str(err.value) and "local_stepz" in str(err.value)
    assert fakes.calls == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('base = "nope.toml"\nstrategies = ["fedavg"]\n[[settings]]\nname = "FL"\n', "not found"),
        ('base = "base.toml"\nstrategies = ["fedavgg"]\n[[settings]]\nname = "FL"\n', "fedavgg"),
        ('base = "base.toml"\nstrategies = ["fedavg"]\n', "`settings` is missing"),
        ('base = "base.toml"\nseeds = []\nstrategies = ["fedavg"]\n[[settings]]\nname = "FL"\n', "seeds"),
        (
            'base = "base.toml"\nstrategies = ["fedavg"]\nsettingz = 1\n[[settings]]\nname = "FL"\n',
            "settingz",
        ),
        (
            'base = "base.toml"\nstrategies = ["fedavg"]\n[[settings]]\nname = "FL"\n[[settings]]\nname = "fl"\n',
            "share a run dir",
        ),
    ],
)
def test_invalid_sweeps_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(sw.SweepError, match="(?s)" + needle.replace("`", ".").replace("[", r"\[")):
        sw.load_sweep(_sweep(tmp_path, text), tmp_path / "out")


def test_skips_done_resumes_checkpointed_and_restarts_partial(tmp_path: Path, fakes: FakeSim) -> None:
    path = _sweep(tmp_path)
    out = tmp_path / "out"
    plan = sw.load_sweep(path, out)
    by_id = {c.id: c for c in plan.cells}
    done, ckpt, partial = by_id["fl__fedavg__seed0"], by_id["fl__fedavg__seed1"], by_id["fl__scaffold__seed0"]
    for cell in (done, ckpt, partial):
        cell.run_dir.mkdir(parents=True)
        cell.run_dir.joinpath("config.toml").write_text(cell.config.to_toml(), encoding="utf-8")
    RunDir(done.run_dir).write_summary({"name": done.id, "strategy": "fedavg", "rounds": 1})
    RunDir(ckpt.run_dir).save_checkpoint(Checkpoint(1, {}, "fedavg"))
    RunDir(partial.run_dir).append_metrics({"round": 0, "stale": True})
    assert (done.state, ckpt.state, partial.state) == ("done", "resume", "new")

    lines: list[str] = []
    outcome = sw.execute_sweep(path, out, log=lines.append)
    calls = dict(fakes.calls)
    assert done.id not in calls and calls[ckpt.id] is True and calls[partial.id] is False
    assert len(fakes.calls) == 7  # 8 FL cells minus the done one; the base model is not a simulation
    assert outcome.skipped == [done.id] and not outcome.failed
    rows = RunDir(partial.run_dir).read_metrics()
    assert [r["round"] for r in rows] == [0, 1] and not any(r.get("stale") for r in rows)
    assert any("[sweep 2/9]" in line and "skipped" in line for line in lines)
    assert any("[sweep 4/9]" in line and "ETA" in line for line in lines)
    assert any("[fedrai] round 1/1" in line for line in lines)
    # The summary carries the row label even where the round driver does not write it.
    # A second invocation finds everything done and runs nothing.
    fakes.calls.clear()
    again = sw.execute_sweep(path, out, log=lines.append)
    assert fakes.calls == [] and len(again.skipped) == 9


def test_failing_cell_is_recorded_and_the_sweep_goes_on(
    tmp_path: Path, fakes: FakeSim, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes.fail = {"fl-filter-cai__fedavg__seed0", "fl__scaffold__seed1"}
    path = _sweep(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(typer.Exit) as exit_:
        sw.sweep_command(path, out=out)
    assert exit_.value.exit_code == 2
    assert len(fakes.calls) == 8  # every FL cell was tried
    status = sw.read_status(out)
    assert status["failed"] == 2
    cells = status["cells"]
    assert cells["fl-filter-cai__fedavg__seed0"]["state"] == "failed"
    assert "boom in fl-filter-cai__fedavg__seed0" in cells["fl-filter-cai__fedavg__seed0"]["error"]
    assert cells["fl__fedavg__seed0"]["state"] == "done" and cells["fl__fedavg__seed0"]["seconds"] >= 0
    assert cells["base-model__none__seed0"]["state"] == "done"
    # The report covers the finished cells, base model included.
    report = (out / "report" / "report.md").read_text()
    assert "base model, no FL" in report and "fl__scaffold__seed0" in report
    assert "fl__scaffold__seed1" not in report.split("## Per-round")[0]
    # A rerun retries only the failed cells.
    fakes.fail, fakes.calls = set(), []
    sw.sweep_command(path, out=out)
    assert sorted(n for n, _ in fakes.calls) == ["fl-filter-cai__fedavg__seed0", "fl__scaffold__seed1"]
    assert sw.read_status(out)["failed"] == 0


def test_an_interrupted_sweep_says_how_to_go_on(
    tmp_path: Path, fakes: FakeSim, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _sweep(tmp_path)
    out = tmp_path / "out"
    done = fakes.__call__

    def ctrl_c_in_second_cell(config, run_dir, **kw):  # noqa: ANN001, ANN003
        if len(fakes.calls) == 1:
            fakes.calls.append((config.name, False))
            raise KeyboardInterrupt
        return done(config, run_dir, **kw)

    monkeypatch.setattr("fedrai.runtime.run_simulation", ctrl_c_in_second_cell)
    with pytest.raises(typer.Exit) as exit_:
        sw.sweep_command(path, out=out, only=["fl__*"])
    assert exit_.value.exit_code == 130
    err = capsys.readouterr().err
    assert f"sweep interrupted; go on with: fedrai sweep {path} --out {out} --only fl__*" in err
    assert sw.read_status(out)["cells"][fakes.calls[1][0]]["state"] == "interrupted"


def test_base_model_row_is_a_run_dir_the_report_reads(tmp_path: Path, fakes: FakeSim) -> None:
    from fedrai.report import load_run

    path = _sweep(tmp_path)
    out = tmp_path / "out"
    sw.execute_sweep(path, out, only="base-model")
    run_dir = out / "base-model__none__seed0"
    rows = RunDir(run_dir).read_metrics()
    assert [r["round"] for r in rows] == [0] and rows[0]["final.advbench.refusal_rate"] == 0.25
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["strategy"] == "none" and summary["setting"] == "base model, no FL"
    run = load_run(run_dir)
    assert run.setting == "base model, no FL" and run.strategy == "none"
    assert run.final("advbench.refusal_rate") == (0.25, True)
    assert fakes.calls == []


def test_only_selects_by_glob_or_substring(tmp_path: Path, fakes: FakeSim) -> None:
    plan = sw.load_sweep(_sweep(tmp_path), tmp_path / "out")
    assert [c.id for c in sw.select(plan.cells, "*__scaffold__seed0")] == [
        "fl__scaffold__seed0",
        "fl-filter-cai__scaffold__seed0",
    ]
    assert len(sw.select(plan.cells, ["filter-cai__fedavg", "base"])) == 3
    with pytest.raises(sw.SweepError, match="matches none"):
        sw.execute_sweep(tmp_path / "sweep.toml", tmp_path / "out", only="nothing-like-this")


def test_dry_run_prints_differences_and_runs_nothing(tmp_path: Path, fakes: FakeSim) -> None:
    lines: list[str] = []
    dirs = sw.execute_sweep(_sweep(tmp_path), tmp_path / "out", dry_run=True, log=lines.append).run_dirs
    text = "\n".join(lines)
    assert len(dirs) == 9 and fakes.calls == [] and not (tmp_path / "out").exists()
    assert "[9/9] fl-filter-cai__scaffold__seed1  [new]" in text
    assert 'train.optimizer = "sgd"' in text and 'cai.placement = "server"' in text


def test_run_dir_of_another_config_is_refused(tmp_path: Path) -> None:
    path = _sweep(tmp_path)
    plan = sw.load_sweep(path, tmp_path / "out")
    cell = plan.cells[1]
    cell.run_dir.mkdir(parents=True)
    other = cell.config.model_copy(update={"seed": 99})
    (cell.run_dir / "config.toml").write_text(other.to_toml(), encoding="utf-8")
    with pytest.raises(sw.SweepError, match="different config.*seed"):
        sw.load_sweep(path, tmp_path / "out")


def test_shipped_experiment_sweeps_validate() -> None:
    root = Path(__file__).resolve().parents[1] / "experiments"
    sweeps = sorted(root.glob("*/sweep*.toml"))
    assert sweeps, "experiments/*/sweep*.toml missing"
    for path in sweeps:
        plan = sw.load_sweep(path, Path("/nonexistent-sweep-out"))
        assert plan.cells, path
        if path.parent.name not in ("paper", "cpu"):
            continue  # other studies (e.g. untrusted sites) choose their own cells
        strategies = {c.strategy for c in plan.cells}  # the paper's table: its strategies and settings
        assert {"fedavg", "scaffold"} <= strategies, path
        settings = {c.setting for c in plan.cells}
        assert {"FL", "FL + filter", "FL + CAI", "FL + filter + CAI"} <= settings, path


@pytest.mark.slow
def test_real_sweep_one_cell_and_base_model(tiny_model_dir: Path, tmp_path: Path, capfd) -> None:
    _files(tmp_path, model=str(tiny_model_dir))
    path = _sweep(
        tmp_path,
        'base = "base.toml"\nname = "real"\ninclude_base_model = true\nstrategies = ["fedavg"]\n'
        '[[settings]]\nname = "FL"\n',
    )
    out = tmp_path / "out"
    outcome = sw.execute_sweep(path, out)
    assert not outcome.failed and outcome.ran == ["base-model__none__seed0", "fl__fedavg__seed0"]
    fl = RunDir(out / "fl__fedavg__seed0")
    assert [r["round"] for r in fl.read_metrics()] == [0, 1]
    base_rows = RunDir(out / "base-model__none__seed0").read_metrics()
    assert base_rows[0]["final.advbench.n"] == 3 and "final.heldout.loss" in base_rows[0]
    assert outcome.report is not None and "base model, no FL" in outcome.report.read_text()
    assert sw.read_status(out)["failed"] == 0
    # the base-model row loads and evaluates in the sweep's process: its library bars and warnings
    # go to the cell's warnings.log, not into the sweep's console lines
    assert "Loading weights" not in "".join(capfd.readouterr())


def test_a_setting_can_apply_to_some_strategies_only(tmp_path):
    from fedrai.sweep import load_sweep

    (tmp_path / "base.toml").write_text('name = "b"\n', encoding="utf-8")
    (tmp_path / "s.toml").write_text(
        'base = "base.toml"\nseeds = [0]\nstrategies = ["fedavg", "fedprox"]\n'
        '[[settings]]\nname = "A"\n[[settings]]\nname = "B"\nstrategies = ["fedprox"]\n',
        encoding="utf-8",
    )
    ids = [c.id for c in load_sweep(tmp_path / "s.toml", tmp_path / "out").cells]
    assert ids == ["a__fedavg__seed0", "a__fedprox__seed0", "b__fedprox__seed0"]


def test_an_old_pickle_checkpoint_fails_its_cell_before_anything_runs(tmp_path: Path, fakes: FakeSim) -> None:
    path = _sweep(tmp_path)
    out = tmp_path / "out"
    plan = sw.load_sweep(path, out)
    old = next(c for c in plan.cells if c.id == "fl__fedavg__seed1")
    old.run_dir.mkdir(parents=True)
    old.run_dir.joinpath("config.toml").write_text(old.config.to_toml(), encoding="utf-8")
    (old.run_dir / "checkpoint").mkdir()
    (old.run_dir / "checkpoint" / "state.pt").write_bytes(b"not read")
    assert old.state == "resume"
    lines: list[str] = []
    outcome = sw.execute_sweep(path, out, log=lines.append)
    assert outcome.failed == [old.id] and old.id not in dict(fakes.calls)
    assert any(old.id in line and "pickle format" in line for line in lines)


def test_a_second_sweep_into_a_busy_sweep_dir_is_refused(tmp_path: Path) -> None:
    from tests.test_run_lock import hold_lock

    holder = hold_lock(tmp_path / "out")
    try:
        with pytest.raises(sw.SweepError, match=rf"pid {holder.pid} on "):
            sw.execute_sweep(_sweep(tmp_path), tmp_path / "out")
    finally:
        holder.kill()
        holder.wait(timeout=10)
