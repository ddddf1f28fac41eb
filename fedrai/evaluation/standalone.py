"""Evaluate any base model, with or without a LoRA adapter, outside a federated run.

So a number in a report can be reproduced from the saved adapter alone: the same prompt sets,
subsets, decoding and scorers as the server uses (:class:`ServerEvaluator`), written as JSON.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedrai.assets import resolve
from fedrai.config import ExperimentConfig
from fedrai.data import Row
from fedrai.evaluation.progress import EvalProgress
from fedrai.evaluation.scorers import SupportsScore
from fedrai.evaluation.server_eval import ServerEvaluator


def load_model_for_eval(cfg: ExperimentConfig, adapter: str | None = None) -> tuple[Any, Any]:
    """Base model (``cfg.model``) plus, when given, a peft adapter dir on top; eval mode."""
    from fedrai.model import load_base_model

    model, tokenizer = load_base_model(cfg.model)
    if adapter:
        from peft import PeftModel

        adapter_dir = Path(resolve(adapter))
        if not (adapter_dir / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{adapter_dir}: not a peft adapter dir (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    model.eval()
    return model, tokenizer


def plan_line(cfg: ExperimentConfig, n_advbench: int, n_benign: int, n_heldout: int) -> str:
    """What an evaluation is about to do, in one line: prompts, tokens, batches."""
    ev = cfg.eval
    n = n_advbench + n_benign
    parts = [
        f"{n} prompts ({n_advbench} AdvBench from {ev.advbench_source}, {n_benign} benign from {ev.benign_source})",
        f"greedy, up to {ev.max_new_tokens} new tokens each (at most {n * ev.max_new_tokens} tokens)",
        f"batches of {ev.batch_size}",
    ]
    if n_heldout:
        parts.append(f"held-out loss on {n_heldout} rows")
    return "evaluating " + "; ".join(parts)


def load_heldout_rows(path: str | Path, cfg: ExperimentConfig, limit: int = 0) -> list[Row]:
    """Prompt/response (or chat ``messages``) rows for held-out loss, read like client data
    (``data.*`` field names and bad-row policy; :func:`fedrai.data.loading.load_rows`), all of them."""
    from fedrai.data.loading import load_rows

    data = cfg.data.model_copy(update={"max_rows": 0})
    rows = load_rows(str(path), data, origin="benign", seed=cfg.seed).rows
    for row in rows:
        row["origin"], row["group"] = "benign", "heldout"
    return rows[:limit] if limit else rows


def evaluate_model(
    cfg: ExperimentConfig,
    *,
    adapter: str | None = None,
    heldout: str | Path | None = None,
    per_round_sets: bool = False,
    judge: SupportsScore | None = None,
    heldout_rows: list[Row] | None = None,
    progress: EvalProgress | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load, evaluate, and return a JSON-ready result: metrics, settings and every response.

    By default the final sets (``eval.advbench_final`` / ``eval.benign_final``) are scored, the
    figures a report's table shows; ``per_round_sets`` scores the smaller per-round subsets.
    ``heldout_rows`` (e.g. a run's own held-out rows) is used when no ``heldout`` file is given.
    ``announce`` gets one line saying what is about to run; ``progress`` counts prompts done.
    """
    start = time.perf_counter()
    model, tokenizer = load_model_for_eval(cfg, adapter)
    load_s = time.perf_counter() - start
    rows = load_heldout_rows(heldout, cfg) if heldout else list(heldout_rows or [])
    evaluator = ServerEvaluator(cfg, tokenizer, rows, judge=judge)
    final = not per_round_sets
    adv = evaluator.advbench_final if final else evaluator.advbench_round
    ben = evaluator.benign_final if final else evaluator.benign_round
    if announce is not None:
        announce(plan_line(cfg, len(adv), len(ben), len(rows)))
    if progress is not None:
        evaluator.on_batch = progress.advance
        progress.start(len(adv) + len(ben))
    try:
        raw = evaluator.evaluate(model, 0, final=final)
    finally:
        if progress is not None:
            progress.stop()
    metrics = {k.removeprefix("final."): v for k, v in raw.items()}
    return {
        "model": cfg.model.name_or_path,
        "adapter": str(adapter) if adapter else None,
        "sets": "per_round" if per_round_sets else "final",
        "metrics": metrics,
        "eval": cfg.eval.model_dump(mode="json"),
        "seed": cfg.seed,
        "load_seconds": round(load_s, 2),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "responses": evaluator.records(),
    }
