"""A warm SuperExec for a deployed site: Flower's own ClientApp, forked from a preloaded process.

A SuperNode hands every message to a fresh ``flwr-clientapp`` process (Flower 1.42 has no
long-lived ClientApp in deployment; its "warm executors" are pre-started Kubernetes pods that still
start a fresh ClientApp process per task). With a real LLM that means importing torch and loading
the base model every round. Flower's ``--isolation process`` mode leaves starting those processes
to a SuperExec run outside the SuperNode; this module is that SuperExec, with one change:

- it imports torch, transformers, peft and fedrai's ClientApp once, and with ``--experiment``
  loads the experiment's base model + LoRA into the worker cache (``fedrai.clients.worker``);
- for each task it ``fork()``s: the child runs Flower's unmodified ``run_clientapp`` (pull the
  message over the SuperNode's Runtime API, run the ClientApp, push the reply, exit), starting
  with everything already imported and the model already in memory (copy-on-write);
- everything else is Flower's ``run_superexec`` loop (task acquisition, plugin, exit handling).

Why fork is safe here: the parent runs no torch parallel region (it pins torch to one thread
before loading anything), so no OpenMP pool exists to be broken in the child; each child sets its
own thread count from the run's config. The child is a process like ``flwr-clientapp``: a crash
or leak in one round cannot touch the next.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from flwr.supercore.constant import ExecutorType, TaskType
from flwr.supercore.superexec.executor.subprocess_executor import SubprocessExecutor
from flwr.supercore.superexec.executor.types import ExecutionSpec, LaunchResult


class ForkExecutor(SubprocessExecutor):
    """Flower's subprocess executor, except that ClientApp tasks run in a fork of this process."""

    def __init__(self) -> None:
        super().__init__()
        self.children: set[int] = set()

    def launch(self, spec: ExecutionSpec) -> LaunchResult:
        if spec.task_type != TaskType.CLIENT_APP:
            return super().launch(spec)
        pid = os.fork()
        if pid == 0:  # the child: become Flower's ClientApp process for this one task
            os._exit(_run_task(spec))
        self.children.add(pid)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap finished children (no zombies between rounds)."""
        super().reconcile()
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
            self.children.discard(pid)

    def close(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        super().close()


def _run_task(spec: ExecutionSpec) -> int:
    from flwr.supercore.tls import validate_and_resolve_root_certificates
    from flwr.supernode.runtime.run_clientapp import run_clientapp

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # run_clientapp installs its own handlers
    try:
        run_clientapp(
            runtime_api_address=spec.runtime_api_address,
            token=spec.token,
            insecure=spec.insecure,
            certificates=validate_and_resolve_root_certificates(spec.root_certificates_path, spec.insecure),
            parent_pid=spec.parent_pid,
            runtime_dependency_install=False,
        )
    except SystemExit as done:  # run_clientapp always ends with flwr_exit (sys.exit)
        return done.code if isinstance(done.code, int) else 0
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's loop
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def preload(experiment: Path | None) -> dict[str, Any]:
    """Import what every ClientApp needs and, given an experiment, load its base model once."""
    import torch

    torch.set_num_threads(1)  # no OpenMP pool in the parent: children fork from a clean state
    import peft  # noqa: F401
    import transformers  # noqa: F401

    import fedrai.client_app  # noqa: F401  (and with it training, model, transport, guards)

    info: dict[str, Any] = {"preloaded_model": None}
    if experiment is not None:
        from fedrai.assets import fetch_for
        from fedrai.clients.worker import get_worker
        from fedrai.config import ExperimentConfig

        cfg = ExperimentConfig.from_toml(experiment)
        fetch_for(cfg)
        get_worker(cfg, set_threads=False)
        info["preloaded_model"] = cfg.model.name_or_path
    return info


def run_warm_superexec(
    runtime_api_address: str,
    *,
    experiment: Path | None = None,
    insecure: bool = True,
    root_certificates: str | None = None,
) -> None:
    """Preload, then run Flower's SuperExec loop with :class:`ForkExecutor` (never returns)."""
    import flwr.supercore.superexec.run_superexec as superexec

    info = preload(experiment)
    print(
        f"[fedrai] warm SuperExec ready (model: {info['preloaded_model'] or 'loaded per task'})", flush=True
    )
    # run_superexec builds its executor through this factory; ours differs only in launch().
    superexec.get_executor = lambda *args, **kwargs: ForkExecutor()  # type: ignore[assignment]
    superexec.run_superexec(
        runtime_api_address=runtime_api_address,
        insecure=insecure,
        root_certificates_path=root_certificates,
        executor_type=ExecutorType.SUBPROCESS,
    )
