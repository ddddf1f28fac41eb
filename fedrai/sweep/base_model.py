"""The base-model row of a sweep: the untouched model evaluated once, written as a run dir."""

from __future__ import annotations

import json
import time
from typing import Any

from fedrai.sweep.plan import BASE_MODEL_STRATEGY, Cell

HELDOUT_FILE = "heldout.jsonl"
RESPONSES_FILE = "responses.json"
WARNINGS_FILE = "warnings.log"


def run_base_model(cell: Cell) -> dict[str, Any]:
    """Evaluate the untouched base model once, written as a run dir the report reads as a row.

    Uses the evaluation layer's standalone path (:func:`fedrai.evaluation.standalone.evaluate_model`)
    with the same final sets, decoding and scorers the FL runs use, and the same held-out rows.
    """
    from fedrai.data.client_data import heldout_rows
    from fedrai.evaluation.standalone import evaluate_model
    from fedrai.quiet import routed_warnings
    from fedrai.run_dir import RunDir

    cfg = cell.config
    run = RunDir(cell.run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    for stale in (run.metrics, run.summary):
        stale.unlink(missing_ok=True)
    run.config.write_text(cfg.to_toml(), encoding="utf-8")
    heldout_path = None
    if cfg.data.heldout_rows > 0:
        mf = cfg.data.messages_field
        rows = heldout_rows(cfg)
        heldout_path = run.path / HELDOUT_FILE
        heldout_path.write_text(
            "".join(
                json.dumps({mf: [*r["messages"], {"role": "assistant", "content": r["response"]}]}) + "\n"
                for r in rows
            ),
            encoding="utf-8",
        )
    t0 = time.perf_counter()
    with routed_warnings(run.path / WARNINGS_FILE):  # library warnings and bars off the sweep's console
        result = evaluate_model(cfg, heldout=heldout_path)
    seconds = time.perf_counter() - t0
    metrics = result["metrics"]
    (run.path / RESPONSES_FILE).write_text(
        json.dumps(result.get("responses", []), indent=1), encoding="utf-8"
    )
    run.append_metrics({"round": 0, "seconds": seconds, **{f"final.{k}": v for k, v in metrics.items()}})
    summary = {
        "name": cfg.name,
        "strategy": BASE_MODEL_STRATEGY,
        "setting": cell.setting,
        "rounds": 0,
        "seconds": seconds,
        "failures": 0,
        "bytes_up": 0,
        "bytes_down": 0,
        "final": dict(metrics),
        "model": cfg.model.name_or_path,
    }
    run.write_summary(summary)
    return summary
