"""The data guard of one client: load rows, screen them, revise or drop, then hand them to training.

Everything a guard removes or rewrites is written to the client's own audit with the reason;
only counts (``safety.*``, ``cai.*``, ``data.*``) are returned for the server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedrai.config import ExperimentConfig
from fedrai.data import Row
from fedrai.private_files import private_dir, write_private_text


def load_client_rows(cfg: ExperimentConfig, partition_id: int, node_config: dict[str, Any]) -> list[Row]:
    """A deployed site reads its own file (``data-path``); a simulated client its partition."""
    if node_config.get("data-path"):
        from fedrai.data.client_data import site_rows

        return site_rows(str(node_config["data-path"]), cfg)
    from fedrai.data.client_data import client_rows

    return client_rows(cfg, partition_id)


def guard_rows(
    cfg: ExperimentConfig,
    rows: list[Row],
    state_dir: Path,
    model: Any,
    tokenizer: Any,
    seed: int,
    *,
    release: bool = True,
) -> tuple[list[Row], dict[str, float]]:
    """Filter, then CAI (as configured); return the rows to train on and the counts.

    A client guards its data once per run, then trains for many rounds: with ``release`` the
    filter (its encoder) and the CAI critic are dropped on return and the freed heap is handed
    back to the OS (:func:`release_memory`), so they do not sit in the actor through training.
    """
    try:
        return _guard_rows(cfg, rows, state_dir, model, tokenizer, seed)
    finally:
        if release:
            release_memory()


def release_memory() -> None:
    """Collect garbage, then ask glibc to return free heap pages to the OS (``malloc_trim``).

    Freed tensors and Python objects go back to the allocator, not to the OS: without the trim
    the process's resident set stays at its high-water mark. A no-op where glibc is absent.
    """
    import contextlib
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        ctypes.CDLL(name).malloc_trim(0)


def _guard_rows(
    cfg: ExperimentConfig, rows: list[Row], state_dir: Path, model: Any, tokenizer: Any, seed: int
) -> tuple[list[Row], dict[str, float]]:
    counts: dict[str, float] = {
        "data.rows": float(len(rows)),
        "data.harmful_rows": float(sum(r["origin"] == "harmful" for r in rows)),
    }
    kept, to_revise = rows, []
    safety_filter = None
    audit = None
    if cfg.safety.enabled or cfg.cai.placement in ("client", "both"):
        from fedrai.safety.audit import AuditLog

        audit = AuditLog(state_dir)
    if cfg.safety.enabled:
        from fedrai.safety.filters import build_filter
        from fedrai.safety.guard import screen_rows

        safety_filter = build_filter(cfg.safety)
        result = screen_rows(rows, cfg.safety, safety_filter, audit)
        kept, to_revise = result.kept, result.to_revise
        counts.update({k: float(v) for k, v in result.counts.items()})
        harmful_ids = {r["id"] for r in rows if r["origin"] == "harmful"}
        counts["safety.harmful_kept"] = float(sum(r["id"] in harmful_ids for r in kept))
    if cfg.cai.placement in ("client", "both"):
        from fedrai.safety.cai.client import revise_on_client
        from fedrai.safety.cai.llm import build_critic

        critic = build_critic(cfg, model, tokenizer)
        # SFT on the revisions happens by training on the returned rows; DPO runs on the server.
        kept, cai_counts, _pairs = revise_on_client(kept, to_revise, cfg, critic, safety_filter, audit, seed)
        counts.update(cai_counts.to_metrics("cai."))
    counts["data.trained_rows"] = float(len(kept))
    return kept, counts


GUARDED_DIR = "guarded"


def cached_guard(
    state_dir: Path, key: tuple[Any, ...], compute: Callable[[], tuple[list[Row], dict[str, float]]]
) -> tuple[list[Row], dict[str, float]]:
    """The guarded rows for ``key``, computed once and kept in the client's own state dir.

    A deployed SuperNode starts a fresh ClientApp process for every message, so an in-memory
    cache never hits there: without this file every round would re-screen and re-revise the
    site's data (and append the same audit records again). The file holds the training rows, so
    it lives where the audit does and never leaves the site.
    """
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:24]
    path = Path(state_dir) / GUARDED_DIR / f"{digest}.json"
    if path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            return cached["rows"], {k: float(v) for k, v in cached["counts"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a torn write from a killed process: compute again
    rows, counts = compute()
    private_dir(path.parent)
    write_private_text(path, json.dumps({"rows": rows, "counts": counts}))  # atomic: old or whole new
    return rows, counts
