"""A throwaway Ray cluster of two nodes on loopback, for tests: started and stopped by PID.

Each node is a ``ray start --block`` process in its own session, with its own temp dir (so this
machine's default ``/tmp/ray`` never learns about it and no other ``ray.init()`` joins it), its
own ports, and one CPU. ``ray stop`` is never used: it stops every Ray on the machine by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from fedrai.runtime.processes import ProcessTracker, stop_process_tree
from fedrai.runtime.superlink import free_port


def ray_bin() -> str:
    candidate = Path(sys.executable).parent / "ray"
    return str(candidate) if candidate.exists() else "ray"


@dataclass
class RayNode:
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log: Path
    tracker: ProcessTracker


@dataclass
class RayCluster:
    address: str
    nodes: list[RayNode] = field(default_factory=list)

    def processes(self) -> list[psutil.Process]:
        """Every process the nodes started (sampled while they ran)."""
        out: list[psutil.Process] = []
        for node in self.nodes:
            node.tracker.sample()
            out.extend(node.tracker.processes())
        return out


def _start_node(args: list[str], temp_dir: Path, env: dict[str, str]) -> RayNode:
    log = temp_dir.with_suffix(".log")
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [ray_bin(), "start", "--block", "--disable-usage-stats", *args],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return RayNode(proc, temp_dir, log, ProcessTracker(proc.pid, interval_s=0.3).start())


def _wait_for(predicate, timeout_s: float, what: str, node: RayNode) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise RuntimeError(
                f"{what}: ray start exited ({node.process.returncode}):\n{node.log.read_text()[-3000:]}"
            )
        if predicate():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not ready after {timeout_s:.0f} s:\n{node.log.read_text()[-3000:]}")


def _raylets(node: RayNode) -> int:
    node.tracker.sample()
    alive = 0
    for proc in node.tracker.processes():
        with contextlib.suppress(psutil.Error):
            cmdline = proc.cmdline()  # empty for a process caught between fork and exec, or a zombie
            if proc.is_running() and cmdline and "raylet" in Path(cmdline[0]).name:
                alive += 1
    return alive


@contextlib.contextmanager
def two_node_cluster(cpus_per_node: int = 1, startup_timeout_s: float = 120.0) -> Iterator[RayCluster]:
    """Yield a running head + worker node (``address`` is the head's GCS); stop both by PID."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    root = Path(tempfile.mkdtemp(prefix="fr-ray-", dir="/tmp"))  # short: Ray's unix socket paths
    gcs_port = free_port()
    cluster = RayCluster(address=f"127.0.0.1:{gcs_port}")

    def ports() -> list[str]:
        return [
            "--node-manager-port", str(free_port()),
            "--object-manager-port", str(free_port()),
            "--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()),
            "--metrics-export-port", str(free_port()),
            "--num-gpus", "0",
            "--num-cpus", str(cpus_per_node),
            "--node-ip-address", "127.0.0.1",
        ]  # fmt: skip

    try:
        head_dir = root / "head"
        head = _start_node(
            ["--head", "--port", str(gcs_port), "--temp-dir", str(head_dir), "--include-dashboard=false",
             "--ray-client-server-port", str(free_port()), *ports()],
            head_dir, env,
        )  # fmt: skip
        cluster.nodes.append(head)
        _wait_for(lambda: _raylets(head) >= 1, startup_timeout_s, "head node", head)
        worker_dir = root / "worker"
        worker = _start_node(
            ["--address", cluster.address, "--temp-dir", str(worker_dir), *ports()], worker_dir, env
        )
        cluster.nodes.append(worker)
        _wait_for(lambda: _raylets(worker) >= 1, startup_timeout_s, "worker node", worker)
        time.sleep(3.0)  # the worker's raylet registers with the GCS
        yield cluster
    finally:
        for node in reversed(cluster.nodes):
            node.tracker.sample()
            node.tracker.stop()
            stop_process_tree(node.process.pid, grace_s=10.0, extra=node.tracker.processes())
            with contextlib.suppress(Exception):
                node.process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
