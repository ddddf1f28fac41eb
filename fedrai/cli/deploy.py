"""``fedrai deploy``: credentials, a site's SuperNode, run submission, and a loopback rehearsal."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fedrai.cli.common import SetOption, console, fail, load_experiment
from fedrai.private_files import private_dir

# Shared by the commands that talk to a SuperLink.
SuperLinkOption = Annotated[str, typer.Option(help="SuperLink address HOST:PORT.")]
CaOption = Annotated[Path, typer.Option(help="The deployment's ca.crt.")]

app = typer.Typer(
    no_args_is_help=True,
    help="Deploy across sites: TLS certificates and node keys, SuperNodes, run submission.",
)


@app.command()
def credentials(
    out: Annotated[
        Path, typer.Argument(help="Directory for ca.crt, server.pem/.key and nodes/<site>[.pub].")
    ],
    host: Annotated[
        list[str], typer.Option(help="Every name/IP sites dial to reach the SuperLink (repeatable).")
    ],
    site: Annotated[
        list[str] | None, typer.Option(help="A site to make a key pair for (repeatable).")
    ] = None,
) -> None:
    """Make a CA, the SuperLink's certificate, and one authentication key pair per site."""
    from fedrai.runtime.credentials import make_node_key, make_tls

    try:
        tls = make_tls(out, host)
        keys = [make_node_key(out / "nodes", name) for name in site or []]
    except ValueError as err:
        fail(str(err))
        return
    console.print(
        f"SuperLink: --ssl-ca-certfile {tls.ca} --ssl-certfile {tls.certificate} --ssl-keyfile {tls.private_key}"
    )
    console.print(f"every site and the submitter verify with {tls.ca}; keep {out / 'ca.key'} offline")
    for key in keys:
        console.print(
            f"{key.name}: give the site {key.private_key}; register {key.public_key} at the coordinator"
        )


@app.command()
def site(
    superlink: SuperLinkOption,
    ca: CaOption,
    key: Annotated[Path, typer.Option(help="This site's private key (nodes/<site>, not .pub).")],
    data: Annotated[Path, typer.Option(help="This site's rows (JSONL/CSV/JSON/dir).")],
    state_dir: Annotated[Path, typer.Option(help="Where the audit and guarded rows stay (never sent).")],
    experiment: Annotated[
        Path | None,
        typer.Option(help="Check the data with this experiment's data rules (default: defaults)."),
    ] = None,
    runtime_port: Annotated[int, typer.Option(help="Port of this SuperNode's own Runtime API.")] = 9094,
    warm: Annotated[
        bool,
        typer.Option(
            help="Run ClientApps from a warm process (model loaded once; --experiment preloads it)."
        ),
    ] = False,
) -> None:
    """Check this site's key, data and connection, then run its SuperNode until stopped."""
    from fedrai.config import ExperimentConfig
    from fedrai.runtime.deployment import (
        DeploymentError,
        check_site,
        explain_supernode_failure,
        supernode_command,
        warm_exec_command,
    )
    from fedrai.runtime.flower_app import flower_env
    from fedrai.runtime.processes import stop_process_tree, tail

    cfg = load_experiment(experiment, None) if experiment is not None else ExperimentConfig()
    try:
        rows = check_site(cfg, superlink, ca, key, data)
    except (DeploymentError, ValueError) as err:
        fail(str(err))
        return
    console.print(f"pre-flight ok: {rows} rows in {data}; SuperLink {superlink} verified against {ca}")
    private_dir(state_dir)  # the site's audit and guarded rows: owner only
    node_config: dict[str, str | int] = {
        "data-path": str(data.resolve()),
        "state-dir": str(state_dir.resolve()),
    }
    cmd = supernode_command(
        superlink, ca=ca, private_key=key, node_config=node_config, runtime_port=runtime_port, warm=warm
    )
    log_path = state_dir / "supernode.log"
    console.print(
        f"starting SuperNode{' + warm SuperExec' if warm else ''} (log: {log_path}); Ctrl-C stops it"
    )
    env = flower_env(state_dir / ".flwr")
    procs = []
    for command in [cmd] + ([warm_exec_command(runtime_port, experiment)] if warm else []):
        with open(log_path, "ab") as log:
            procs.append(
                subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            )
    try:
        code = procs[0].wait()
    except KeyboardInterrupt:
        code = 0
        console.print("SuperNode stopped")
    finally:
        for proc in procs:
            stop_process_tree(proc.pid)
    if code != 0:
        fail(f"SuperNode exited with code {code}: {explain_supernode_failure(tail(log_path, 60))}")


@app.command("warm-exec")
def warm_exec(
    runtime_api_address: Annotated[
        str, typer.Option(help="The SuperNode's Runtime API (its --port), e.g. 127.0.0.1:9094.")
    ],
    experiment: Annotated[
        Path | None, typer.Option(help="Preload this experiment's base model (else loaded per task).")
    ] = None,
) -> None:
    """Start ClientApps for a SuperNode run with --isolation process, from a preloaded process."""
    from fedrai.runtime.warm_exec import run_warm_superexec

    run_warm_superexec(runtime_api_address, experiment=experiment)


@app.command()
def submit(
    experiment: Annotated[Path, typer.Argument(help="Experiment TOML.")],
    superlink: SuperLinkOption,
    ca: CaOption,
    out: Annotated[Path, typer.Option(help="Run dir ON THE SUPERLINK'S MACHINE (the ServerApp writes it).")],
    set_: SetOption = None,
) -> None:
    """Submit an experiment to a running SuperLink and stream it to the end."""
    from fedrai.progress import rounds_table
    from fedrai.run_dir import RunDir
    from fedrai.runtime.deployment import DeploymentError, check_superlink, submit_run
    from fedrai.runtime.flower_app import FLWR_HOME_NAME, write_flower_config

    cfg = load_experiment(experiment, set_, out)
    run_dir = out.resolve()
    try:
        check_superlink(superlink, ca)
        flwr_home = run_dir / FLWR_HOME_NAME
        write_flower_config(flwr_home, superlink, root_certificates=ca)
        result = submit_run(cfg, run_dir, flwr_home, on_output=_show)
    except DeploymentError as err:
        fail(str(err))
        return
    console.print(f"run {result.run_id} {result.status} in {result.seconds:.0f} s")
    if (run_dir / "metrics.jsonl").exists():  # only when the SuperLink shares this file system
        console.print(rounds_table(RunDir(run_dir).read_metrics(), title=cfg.name))


@app.command()
def local(
    experiment: Annotated[Path, typer.Argument(help="Experiment TOML.")],
    out: Annotated[Path, typer.Option(help="Run dir.")],
    set_: SetOption = None,
    warm: Annotated[bool, typer.Option(help="Each site runs its ClientApps from a warm SuperExec.")] = False,
) -> None:
    """Rehearse a deployment here: SuperLink with TLS + node auth, one SuperNode per client, one run."""
    from fedrai.assets import AssetError, fetch_for
    from fedrai.progress import rounds_table
    from fedrai.run_dir import RunDir
    from fedrai.run_state import inspect, start_refusal
    from fedrai.runtime.deployment import DeploymentError, run_loopback

    cfg = load_experiment(experiment, set_, out)
    if refusal := start_refusal(inspect(out), how_to_resume="remove it"):  # before any process starts
        fail(refusal)
    try:
        fetch_for(cfg)
        result = run_loopback(cfg, out, warm=warm, on_output=_show)
    except (AssetError, DeploymentError) as err:
        fail(str(err))
        return
    console.print(
        f"SuperLink up in {result.superlink_start_s:.1f} s; {len(result.node_ids)} sites online in "
        f"{result.sites_online_s:.1f} s; run {result.run.run_id} {result.run.status} in {result.run.seconds:.0f} s"
    )
    console.print(rounds_table(RunDir(out).read_metrics(), title=f"{cfg.name} (deployment on loopback)"))


def _show(line: str) -> None:
    if "[fedrai]" in line:
        console.print(line[line.index("[fedrai]") :], highlight=False, markup=False)
    elif "ERROR" in line or "Traceback" in line:
        console.print(Text(line, style="red"), highlight=False)
