"""Where a client ran and what it held: Ray node, host, process, peak resident memory.

The server records this per client and round (``RUN_DIR/clients.jsonl``), so a run on a Ray
cluster shows which node served which client, and a memory regression shows per client actor.
"""

from __future__ import annotations

import os
import resource
import socket
import sys

PLACEMENT_RECORD = "client"
PEAK_RSS_KEY = "client.peak_rss_mb"
PEAK_GPU_KEY = "client.peak_gpu_mb"
# A client's seconds this round: its guard pass (~0 after the first round: guarded once a run) and
# its local training. The server keeps the slowest client's (the round waits for it).
CLIENT_GUARD_SECONDS = "time.client_guard"
CLIENT_TRAIN_SECONDS = "time.client_train"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def peak_gpu_mb() -> float:
    """Peak CUDA memory this process allocated through torch (0 without a GPU in use)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return 0.0
    return max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())) / 2**20


def ray_node_id() -> str:
    """The Ray node this process runs on ("" outside Ray; never imports Ray itself)."""
    ray = sys.modules.get("ray")
    if ray is None:
        return ""
    try:
        return str(ray.get_runtime_context().get_node_id() or "") if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001 - placement is informative; a Ray quirk must not fail training
        return ""


def placement() -> dict[str, str]:
    """Strings for a ``ConfigRecord``: Ray node id, host name, process id.

    Under Ray only (a simulation, on the researcher's own machines); a deployed site's host name
    stays with the site (the server knows its Flower node id already).
    """
    node = ray_node_id()
    if not node:
        return {"node": "", "host": "", "pid": ""}
    return {"node": node, "host": socket.gethostname(), "pid": str(os.getpid())}
