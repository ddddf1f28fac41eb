"""Where a demo round's seconds go: each part of it once, in one process, on one torch thread.

    OMP_NUM_THREADS=1 python -m benchmarks.demo_round [--out benchmarks/results/demo_round.json]

The demo preset's parts, timed in CPU seconds (and wall seconds, which on a shared machine say only
how loaded it was): one server evaluation (the demo's 32 AdvBench + 16 MT-Bench + 16 safe-alarming
prompts, greedy 32 tokens, and 24 held-out rows), one server-CAI round as the demo runs it (10 SFT
steps on the constitution's harm-naming refusals, no generation) and as the 3-round demo ran it
(answers, critiques and revisions generated, 48 tokens), one client's guard pass (the filter) and its
6 local steps. One torch thread: CPU seconds then do not count OpenMP threads spinning while the
machine is shared, and a Ray client actor trains on one thread anyway.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "demo_round.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-demo-round"), help="Audit/state dir.")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from fedrai.cli.run import DEMO_EXPERIMENT
    from fedrai.clients.pipeline import guard_rows, load_client_rows
    from fedrai.config import ExperimentConfig
    from fedrai.data.client_data import heldout_rows
    from fedrai.evaluation.server_eval import ServerEvaluator
    from fedrai.model import get_adapter_state, load_model, set_adapter_state
    from fedrai.safety.cai import ServerCAI
    from fedrai.safety.filters import build_filter
    from fedrai.training import train_lora

    out: dict[str, Any] = {"threads": 1}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        out[name] = {
            "cpu_s": round(time.process_time() - cpu, 1),
            "wall_s": round(time.perf_counter() - wall, 1),
        }
        print(name, out[name], flush=True)
        return result

    demo = ExperimentConfig.from_toml(DEMO_EXPERIMENT, [])
    before = ExperimentConfig.from_toml(DEMO_EXPERIMENT, ["cai.max_tries=1", "cai.max_new_tokens=48"])
    model, tok = timed("load_model", lambda: load_model(demo.model, demo.lora, demo.seed))
    start = {k: v.clone() for k, v in get_adapter_state(model).items()}
    evaluator = ServerEvaluator(demo, tok, heldout_rows(demo))
    metrics = timed("eval_64_prompts_24_heldout", lambda: evaluator.evaluate(model, 0))
    out["eval_64_prompts_24_heldout"]["n"] = {k: v for k, v in metrics.items() if k.endswith(".n")}
    for name, cfg in (("server_cai_demo_no_generation", demo), ("server_cai_before_generated", before)):
        set_adapter_state(model, start)
        cai = ServerCAI(cfg, tok, build_filter(cfg.safety), args.work / name)
        m = timed(name, lambda cai=cai: cai.run_round(model, 1))
        out[name]["counts"] = {
            k: m[k]
            for k in (
                "cai.revised_by_model",
                "cai.fallback_refusals",
                "cai.generated_tokens",
                "cai.sft_steps",
            )
        }
    rows = load_client_rows(demo, 0, {})
    kept, _ = timed(
        "client_guard_pass", lambda: guard_rows(demo, rows, args.work / "client-0", model, tok, 1)
    )
    t = demo.train
    timed(
        "client_6_local_steps",
        lambda: train_lora(
            model,
            tok,
            kept,
            steps=t.local_steps,
            batch_size=t.batch_size,
            grad_accum=t.grad_accum,
            learning_rate=t.learning_rate,
            max_seq_length=demo.model.max_seq_length,
            seed=1,
        ),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
