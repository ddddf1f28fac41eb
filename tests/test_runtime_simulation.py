"""The simulation harness: app dir / Flower config generation (fast) and a real toy run (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import tomllib

from fedrai.config import ExperimentConfig
from fedrai.runtime.flower_app import (
    DEFAULT_COMPONENTS,
    build_run_config,
    federation_config_args,
    write_app_dir,
    write_flower_config,
)
from fedrai.runtime.processes import stop_process_tree
from fedrai.runtime.simulation import run_simulation
from fedrai.runtime.superlink import SimulationError, managed_superlink
from tests.flower_toy_app import COMPONENTS as TOY_COMPONENTS

REPO = Path(__file__).resolve().parents[1]
TRICKY = "a \"quoted\" 'single' ''' and \"\"\" triple \\ back\\slash \\n not-a-newline"


def _config(**federation: object) -> ExperimentConfig:
    fed = {"num_clients": 2, "num_rounds": 2, **federation}
    return ExperimentConfig.from_dict({"name": "toy", "federation": fed, "data": {"source": TRICKY}})


def test_app_dir_round_trips_config_through_flower_loader(tmp_path: Path) -> None:
    from flwr.cli.config_utils import load_and_validate

    config = _config()
    app_dir = write_app_dir(tmp_path, build_run_config(config, tmp_path, resume=True))
    assert app_dir == tmp_path / ".flwr-app"
    assert [p.name for p in app_dir.iterdir()] == ["pyproject.toml"]  # nothing else gets bundled

    doc = tomllib.loads((app_dir / "pyproject.toml").read_text(encoding="utf-8"))
    app = doc["tool"]["flwr"]["app"]
    assert (app["components"]["serverapp"], app["components"]["clientapp"]) == DEFAULT_COMPONENTS
    assert app["config"]["resume"] is True
    assert app["config"]["run-dir"] == str(tmp_path.resolve())
    assert app["config"]["experiment"] == "" and app["config"]["set"] == ""

    flwr_doc, _ = load_and_validate(app_dir / "pyproject.toml", check_module=False)
    run_config = flwr_doc["tool"]["flwr"]["app"]["config"]
    assert run_config["config-toml"] == config.to_toml()
    again = ExperimentConfig.from_run_config(run_config)
    assert again == config and again.data.source == TRICKY


def test_repo_pyproject_declares_runtime_keys() -> None:
    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    cfg = doc["tool"]["flwr"]["app"]["config"]
    assert cfg["run-dir"] == "" and cfg["resume"] is False


def test_flower_config_is_read_by_flower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flwr.cli.flower_config import read_superlink_connection

    monkeypatch.setenv("FLWR_HOME", str(tmp_path))
    write_flower_config(tmp_path, "127.0.0.1:12345")
    conn = read_superlink_connection(None)  # the default connection
    assert conn.name == "fedrai" and conn.address == "127.0.0.1:12345" and conn.insecure
    assert conn.options is None  # `options.*` is deprecated in 1.42: sent as --federation-config


def test_federation_config_args_parse_like_flwr_run() -> None:
    from flwr.common.config import parse_config_args
    from flwr.supercore.utils import simulation_config_from_json

    items = federation_config_args(3, 1, 0.5, ray_num_cpus=2)
    parsed = {k.replace("-", "_"): v for k, v in parse_config_args(items).items()}
    sim = simulation_config_from_json(parsed)
    assert sim.num_supernodes == 3 and sim.backend == "ray"
    assert sim.client_resources_num_cpus == 1 and sim.client_resources_num_gpus == 0.5
    assert sim.init_args_num_cpus == 2 and not sim.HasField("init_args_num_gpus")
    no_gpu = federation_config_args(2, 1, 0.0, ray_num_cpus=2)
    assert "init-args-num-gpus=0" in no_gpu


_ESCAPER = r"""
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stubborn one: needs SIGKILL
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_stop_process_tree_reaches_other_sessions_and_stubborn_processes() -> None:
    root = subprocess.Popen(
        [sys.executable, "-c", _ESCAPER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert root.stdout is not None
    grandchild = int(root.stdout.readline())
    assert os.getsid(grandchild) != os.getsid(root.pid)  # escaped the root's session, like SuperExec
    stopped = stop_process_tree(root.pid, grace_s=1.0)
    root.wait(timeout=5)
    assert set(stopped) == {root.pid, grandchild}
    assert not _alive(grandchild)
    assert stop_process_tree(root.pid) == []  # idempotent


@pytest.mark.slow  # starts flower-superlink (2-4 s of imports)
def test_superlink_that_cannot_start_raises_with_log(tmp_path: Path) -> None:
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    with (
        pytest.raises(SimulationError, match="exited with code") as err,
        managed_superlink(tmp_path / ".flwr", log_path=tmp_path / "sl.log", port=1, extra_args=["--bogus"]),
    ):
        pass
    assert "--bogus" in str(err.value)  # the log tail is in the message
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children_before


def test_cpus_per_client_beyond_machine_fails_early(tmp_path: Path) -> None:
    config = _config(cpus_per_client=10_000)
    with pytest.raises(SimulationError, match="cpus_per_client"):
        run_simulation(config, tmp_path)


def _alive(pid: int, started_before: float | None = None) -> bool:
    """Running and not a zombie; with ``started_before``, a PID reused by a newer process is not ours."""
    try:
        proc = psutil.Process(pid)
        if started_before is not None and proc.create_time() > started_before:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_toy_app_runs_end_to_end_and_leaves_no_process(tmp_path: Path) -> None:
    config = _config()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env["FEDRAI_TOY_ENV"] = "reaches-the-apps"
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    lines: list[str] = []
    started = time.time()

    result = run_simulation(
        config, tmp_path / "run", components=TOY_COMPONENTS, env=env, timeout_s=240, on_output=lines.append
    )

    assert result.returncode == 0 and result.status == "finished:completed"
    assert result.log_path == (tmp_path / "run" / "flower.log").resolve()
    assert any("TOY-SERVER-PRINT" in line for line in lines)  # ServerApp stdout reaches the stream
    assert any("TOY-CLIENT-PRINT" in line and "reaches-the-apps" in line for line in lines)
    assert not any("\x1b[" in line for line in lines)
    record = json.loads((tmp_path / "run" / "toy_server.json").read_text(encoding="utf-8"))
    assert len(record["node_ids"]) == 2
    # FedAvg weighted by num-examples (10 and 20) of +1 and +2 updates, two rounds: 2 * 5/3.
    assert record["final"] == pytest.approx([10 / 3] * 4, rel=1e-5)
    assert record["config_toml"] == config.to_toml()
    assert record["toy_env"] == "reaches-the-apps"
    assert record["flwr_home"] == str((tmp_path / "run" / ".flwr").resolve())

    # Nothing from the run survives: not as our descendant, and none of the PIDs seen under the
    # SuperLink (Ray daemons and workers included) even if orphaned.
    assert len(result.pids) >= 5  # superlink, superexec, simulation, gcs_server, raylet, ...
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in children_before]
    assert left == []
    assert [pid for pid in result.pids if _alive(pid, started_before=started + result.seconds)] == []
