"""Run fedrai across sites: a SuperLink with TLS and SuperNode authentication, one SuperNode per site.

Flower does the transport (HTTPS), the authentication (registered ECDSA keys) and the process
model; this module starts its processes with the right flags, turns their common failures into
messages a site admin can act on, and stops every process it started by PID.

- :func:`submit_run`: a coordinator submits an experiment to a running SuperLink (``fedrai deploy submit``).
- :func:`start_site`: one site's SuperNode after pre-flight checks (``fedrai deploy site``).
- :func:`run_loopback`: the whole path on one machine, SuperLink + N SuperNodes with TLS and
  authentication (``fedrai deploy local``): a rehearsal for a real deployment, the integration
  test and the overhead benchmark.

Every Flower message to a deployed site runs in a fresh ``flwr-clientapp`` process (Flower 1.42
has no long-lived ClientApp in deployment, in either isolation mode): imports and the base model
are paid per round. What fedrai keeps across messages lives in the site's state dir (the guarded
rows, the audit, SCAFFOLD's control variate).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from fedrai.config import ExperimentConfig
from fedrai.runtime.credentials import NodeKey, TlsFiles, existing_tls, make_node_key, make_tls
from fedrai.runtime.flower_app import (
    CONNECTION_NAME,
    DEFAULT_COMPONENTS,
    FLOWER_LOG,
    FLWR_HOME_NAME,
    SUPERLINK_LOG,
    build_run_config,
    executable,
    flower_env,
    write_app_dir,
)
from fedrai.runtime.processes import ProcessTracker, stop_process_tree, tail
from fedrai.runtime.simulation import SimulationResult, failure_message, run_status, stream_flwr_run
from fedrai.runtime.superlink import SimulationError, free_port, managed_superlink


class DeploymentError(SimulationError):
    """A deployment step failed; the message names the site and what to do about it."""


@dataclass(frozen=True)
class Site:
    """One SuperNode: its name (and key file name) and the ``--node-config`` it runs with.

    ``node_config`` keys fedrai reads: ``data-path`` (the site's own rows), ``state-dir`` (where
    its audit and guarded rows stay), ``partition-id`` (a rehearsal on a shared source).
    """

    name: str
    node_config: dict[str, str | int] = field(default_factory=dict)


@dataclass
class SuperNodeHandle:
    site: Site
    process: subprocess.Popen[bytes]
    log_path: Path
    tracker: ProcessTracker
    extra: list[ProcessTracker] = field(default_factory=list)  # the warm SuperExec, if any

    @property
    def pid(self) -> int:
        return self.process.pid


# --------------------------------------------------------------------------- commands
def node_config_arg(node_config: dict[str, str | int]) -> str:
    """``--node-config`` text: Flower reads ``key=value`` pairs as TOML values (strings quoted)."""
    parts = []
    for key, value in node_config.items():
        if isinstance(value, str) and '"' in value:
            raise DeploymentError(f"node-config {key}: a value may not contain a double quote: {value!r}")
        parts.append(f'{key}="{value}"' if isinstance(value, str) else f"{key}={value}")
    return " ".join(parts)


def supernode_command(
    superlink: str,
    *,
    ca: Path | None,
    private_key: Path | None,
    node_config: dict[str, str | int],
    runtime_port: int,
    max_retries: int | None = None,
    warm: bool = False,
) -> list[str]:
    """The ``flower-supernode`` command line for one site (TLS when ``ca`` is given).

    ``warm``: ``--isolation process``, so that a :mod:`fedrai.runtime.warm_exec` SuperExec (see
    :func:`warm_exec_command`) starts the ClientApps instead of the SuperNode's own SuperExec.
    """
    cmd = [executable("flower-supernode"), "--superlink", superlink]
    cmd += ["--insecure"] if ca is None else ["--root-certificates", str(Path(ca).resolve())]
    if private_key is not None:
        cmd += ["--auth-supernode-private-key", str(Path(private_key).resolve())]
    # The SuperNode's own Runtime API (where its ClientApp processes connect): one port per site
    # on a machine that hosts several.
    cmd += ["--port", str(runtime_port), "--node-config", node_config_arg(node_config)]
    if max_retries is not None:
        cmd += ["--max-retries", str(max_retries)]
    if warm:
        cmd += ["--isolation", "process"]
    return cmd


def warm_exec_command(runtime_port: int, experiment: Path | None = None) -> list[str]:
    """The warm SuperExec for a SuperNode started with ``warm=True`` on this machine."""
    cmd = [sys.executable, "-m", "fedrai", "deploy", "warm-exec", "--runtime-api-address"]
    cmd += [f"127.0.0.1:{runtime_port}"]
    if experiment is not None:
        cmd += ["--experiment", str(Path(experiment).resolve())]
    return cmd


# --------------------------------------------------------------------------- failures
_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"CERTIFICATE_VERIFY_FAILED|SSL/TLS handshake error", re.I),
        "the SuperLink's TLS certificate does not verify against the CA file given to this site "
        "(wrong ca.crt, or the certificate lacks the address the site dials among its SANs; "
        "`fedrai deploy credentials --host ...` lists every name and IP)",
    ),
    (
        re.compile(r"Failed to activate SuperNode", re.I),
        "the SuperLink refused this site's key: it is not registered. At the coordinator run "
        "`flwr supernode register <site>.pub <connection>` with the site's PUBLIC key",
    ),
    (
        re.compile(r"Connection refused|Name or service not known|No route to host|timed out", re.I),
        "the SuperLink is not reachable at that address (is it running, is the port open, "
        "is the host name right?)",
    ),
    (
        re.compile(r"Unable to parse the private key file", re.I),
        "the private key file is not an OpenSSH ECDSA key (make one with `fedrai deploy credentials`)",
    ),
)


def explain_supernode_failure(log_text: str) -> str:
    """The likely cause of a SuperNode that exited, from its log (Flower's own line included)."""
    for pattern, meaning in _FAILURES:
        if match := pattern.search(log_text):
            line = next((ln for ln in log_text.splitlines() if match.group(0) in ln), match.group(0))
            return f"{meaning}. Flower said: {line.strip()}"
    return "it exited; see its log"


# --------------------------------------------------------------------------- pre-flight
def check_superlink(address: str, ca: Path | None, timeout_s: float = 5.0) -> None:
    """Raise :class:`DeploymentError` unless ``address`` answers and its certificate verifies."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DeploymentError(f"SuperLink address {address!r}: expected HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as sock:
            if ca is None:
                return
            if not Path(ca).is_file():
                raise DeploymentError(f"CA file {ca} does not exist")
            context = ssl.create_default_context(cafile=str(ca))
            with context.wrap_socket(sock, server_hostname=host.strip("[]")):
                return
    except ssl.SSLCertVerificationError as err:
        raise DeploymentError(
            f"SuperLink {address}: its TLS certificate does not verify against {ca}: {err.verify_message} "
            "(wrong CA file, or the certificate was not made for this host name/IP)"
        ) from None
    except ssl.SSLError as err:
        raise DeploymentError(
            f"SuperLink {address}: TLS handshake failed ({err}); is it serving TLS?"
        ) from None
    except OSError as err:
        raise DeploymentError(f"SuperLink {address} is not reachable: {err}") from None


def check_site(
    cfg: ExperimentConfig, superlink: str, ca: Path | None, private_key: Path | None, data_path: Path | None
) -> int:
    """Pre-flight for one site; returns how many rows its data file holds (after the config's rules)."""
    if private_key is not None:
        from cryptography.hazmat.primitives.serialization import load_ssh_private_key

        try:
            load_ssh_private_key(Path(private_key).read_bytes(), None)
        except OSError as err:
            raise DeploymentError(f"private key {private_key}: {err.strerror}") from None
        except ValueError:
            raise DeploymentError(
                f"private key {private_key} is not an OpenSSH private key (use the file without .pub)"
            ) from None
    rows = 0
    if data_path is not None:
        from fedrai.data.client_data import site_rows

        if not Path(data_path).exists():
            raise DeploymentError(f"data path {data_path} does not exist")
        rows = len(site_rows(str(data_path), cfg))
    check_superlink(superlink, ca)
    return rows


# --------------------------------------------------------------------------- processes
@contextlib.contextmanager
def managed_supernode(
    site: Site,
    superlink: str,
    *,
    ca: Path | None,
    private_key: Path | None,
    log_path: Path,
    env: dict[str, str],
    cwd: Path,
    max_retries: int | None = None,
    warm: bool = False,
    experiment: Path | None = None,
) -> Iterator[SuperNodeHandle]:
    """Start one site's SuperNode in its own session; stop it and its ClientApps by PID on exit.

    ``warm`` also starts the site's warm SuperExec (preloading ``experiment``'s model) beside it.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    runtime_port = free_port()
    cmd = supernode_command(
        superlink,
        ca=ca,
        private_key=private_key,
        node_config=site.node_config,
        runtime_port=runtime_port,
        max_retries=max_retries,
        warm=warm,
    )
    commands = [cmd] + ([warm_exec_command(runtime_port, experiment)] if warm else [])
    procs: list[subprocess.Popen[bytes]] = []
    trackers: list[ProcessTracker] = []
    try:
        for command in commands:
            with open(log_path, "ab") as log_file:
                procs.append(
                    subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=str(cwd),
                        start_new_session=True,
                    )
                )
            trackers.append(ProcessTracker(procs[-1].pid).start())
        yield SuperNodeHandle(site, procs[0], log_path, trackers[0], extra=trackers[1:])
    finally:
        for proc, tracker in zip(procs, trackers, strict=True):
            tracker.sample()
            tracker.stop()
            stop_process_tree(proc.pid, extra=tracker.processes())
            with contextlib.suppress(Exception):
                proc.wait(timeout=5.0)


def _flwr_json(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    out = subprocess.run(
        [executable("flwr"), *args, "--format", "json"], env=env, cwd=str(cwd), capture_output=True, text=True
    )
    text = out.stdout
    try:
        return json.loads(text[text.index("{") :])
    except ValueError:
        raise DeploymentError(f"`flwr {' '.join(args)}` failed:\n{out.stdout}\n{out.stderr}") from None


def register_supernode(key: NodeKey, env: dict[str, str], cwd: Path) -> int:
    """``flwr supernode register``: admit this public key; returns the node id the SuperLink assigned."""
    doc = _flwr_json(
        ["supernode", "register", str(key.public_key), CONNECTION_NAME, "--name", key.name], env, cwd
    )
    node_id = doc.get("node-id", doc.get("node_id"))
    if not doc.get("success", False) or node_id is None:
        raise DeploymentError(f"registering {key.name}: {doc}")
    return int(node_id)


def online_nodes(env: dict[str, str], cwd: Path) -> set[int]:
    """Node ids the SuperLink lists as online."""
    nodes = _flwr_json(["supernode", "list", CONNECTION_NAME], env, cwd).get("nodes", [])
    return {
        int(n.get("node-id", n.get("node_id", -1)))
        for n in nodes
        if str(n.get("status", "")).lower() == "online"
    }


def wait_online(
    node_ids: dict[int, SuperNodeHandle], env: dict[str, str], cwd: Path, timeout_s: float = 120.0
) -> None:
    """Wait until every node is online; a SuperNode that exits first fails with its explained cause."""
    deadline = time.monotonic() + timeout_s
    while True:
        for handle in node_ids.values():
            if handle.process.poll() is not None:
                log = tail(handle.log_path, 60)
                raise DeploymentError(
                    f"site {handle.site.name}: SuperNode exited with code {handle.process.returncode}: "
                    f"{explain_supernode_failure(log)}\n--- {handle.log_path} ---\n{log}"
                )
        missing = set(node_ids) - online_nodes(env, cwd)
        if not missing:
            return
        if time.monotonic() > deadline:
            names = ", ".join(node_ids[n].site.name for n in sorted(missing))
            raise DeploymentError(f"sites not online after {timeout_s:.0f} s: {names}")
        time.sleep(0.5)


# --------------------------------------------------------------------------- the run
def submit_run(
    config: ExperimentConfig,
    run_dir: Path,
    flwr_home: Path,
    *,
    env: dict[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
    components: tuple[str, str] = DEFAULT_COMPONENTS,
    superlink_log: Path | None = None,
) -> SimulationResult:
    """Submit ``config`` to the SuperLink of ``flwr_home``'s ``fedrai`` connection and stream it to the end.

    ``run_dir`` is a path on the SuperLink's machine: the ServerApp writes metrics, adapters and
    checkpoints there. Raises :class:`DeploymentError` unless the run ends ``completed``.
    """
    t0 = time.monotonic()
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    app_dir = write_app_dir(run_dir, build_run_config(config, run_dir), components)
    run_env = flower_env(flwr_home, env)
    log_path = run_dir / FLOWER_LOG
    link_log = superlink_log or log_path
    cmd = [executable("flwr"), "run", str(app_dir), CONNECTION_NAME, "--stream"]
    returncode, run_id = stream_flwr_run(
        cmd,
        run_env,
        cwd=run_dir,
        log_path=log_path,
        on_output=on_output,
        deadline=None if timeout_s is None else t0 + timeout_s,
        tracker=None,  # the SuperLink (and the run's processes) are not ours to track here
        superlink_log=link_log,
    )
    if returncode != 0 or run_id is None:
        raise DeploymentError(
            failure_message(f"`flwr run` exited with code {returncode}", log_path, link_log)
        )
    status = run_status(run_id, run_env, run_dir)
    if not status.endswith(":completed"):
        raise DeploymentError(
            failure_message(f"run {run_id} ended as {status or 'unknown'!r}", log_path, link_log)
        )
    return SimulationResult(returncode, time.monotonic() - t0, log_path, run_id, status)


@dataclass(frozen=True)
class LoopbackResult:
    """A finished rehearsal: the run, the sites' node ids, every PID that was started."""

    run: SimulationResult
    node_ids: dict[str, int]
    superlink_start_s: float
    sites_online_s: float
    pids: tuple[int, ...]


def loopback_sites(cfg: ExperimentConfig, run_dir: Path) -> list[Site]:
    """One site per client, each with its own state dir, reading its partition of the configured source."""
    return [
        Site(
            f"site-{i}",
            {"partition-id": i, "state-dir": str(Path(run_dir).resolve() / "sites" / f"site-{i}")},
        )
        for i in range(cfg.federation.num_clients)
    ]


def run_loopback(
    config: ExperimentConfig,
    run_dir: Path,
    *,
    sites: list[Site] | None = None,
    credentials_dir: Path | None = None,
    unregistered: tuple[str, ...] = (),
    warm: bool = False,
    on_output: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
    components: tuple[str, str] = DEFAULT_COMPONENTS,
    env: dict[str, str] | None = None,
) -> LoopbackResult:
    """SuperLink (TLS + SuperNode auth) and one SuperNode per site on this machine; run ``config``.

    ``unregistered`` names sites whose keys are made but never registered (to show that the
    SuperLink refuses them: :class:`DeploymentError` names the site). ``warm`` runs each site's
    ClientApps from a warm SuperExec that preloaded the model (:mod:`fedrai.runtime.warm_exec`).
    Every process is stopped by PID on return, on error and on Ctrl-C.
    """
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    sites = sites if sites is not None else loopback_sites(config, run_dir)
    creds = Path(credentials_dir or run_dir / "credentials")
    tls: TlsFiles = existing_tls(creds) or make_tls(creds, ["127.0.0.1", "localhost"])
    keys = {s.name: make_node_key(creds / "nodes", s.name) for s in sites}
    flwr_home = run_dir / FLWR_HOME_NAME
    superlink_log = run_dir / SUPERLINK_LOG
    experiment = run_dir / "experiment.toml"
    experiment.write_text(config.to_toml(), encoding="utf-8")
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        link = stack.enter_context(
            managed_superlink(
                flwr_home, log_path=superlink_log, simulation=False, tls=tls, supernode_auth=True, env=env
            )
        )
        flwr_env = flower_env(flwr_home, env)
        node_ids: dict[int, SuperNodeHandle] = {}
        names: dict[str, int] = {}
        t_sites = time.monotonic()
        for site in sites:
            node_id = (
                register_supernode(keys[site.name], flwr_env, run_dir)
                if site.name not in unregistered
                else -1
            )
            handle = stack.enter_context(
                managed_supernode(
                    site,
                    link.address,
                    ca=tls.ca,
                    private_key=keys[site.name].private_key,
                    log_path=run_dir / "supernodes" / f"{site.name}.log",
                    env=flwr_env,
                    cwd=run_dir,
                    max_retries=3,
                    warm=warm,
                    experiment=experiment,
                )
            )
            node_ids[node_id if node_id >= 0 else -len(node_ids) - 1] = handle
            names[site.name] = node_id
        wait_online(node_ids, flwr_env, run_dir)
        online_s = time.monotonic() - t_sites
        result = submit_run(
            config,
            run_dir,
            flwr_home,
            env=env,
            on_output=on_output,
            timeout_s=None if timeout_s is None else max(1.0, timeout_s - (time.monotonic() - t0)),
            components=components,
            superlink_log=superlink_log,
        )
        everything = [link.tracker, *(t for h in node_ids.values() for t in [h.tracker, *h.extra])]
        for tracker in everything:
            tracker.sample()
        pids = tuple(p.pid for t in everything for p in t.processes())
        return LoopbackResult(result, names, link.start_seconds, online_s, pids)


def any_alive(pids: tuple[int, ...]) -> list[int]:
    """PIDs from ``pids`` that still run (tests assert this is empty)."""
    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
    return alive
