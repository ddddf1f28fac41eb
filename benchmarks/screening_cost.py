"""Cost of server-side update screening per client per round, as a share of the round's time.

At the demo's scale (``fedrai/presets/demo.toml``: SmolLM2-135M-Instruct, LoRA r=8, 2 clients
sampled a round, 6 local steps of batch 4): measures on this machine, one torch thread,

- ``screen_seconds_per_adapter``: scoring one adapter on the probe set (``screen.redteam_probes``
  red-team probes, two answers each, plus ``screen.benign_probes`` benign rows);
- ``train_seconds_per_client``: one client's local training of a round (its partition rows);
- ``eval_seconds_per_round``: the server's per-round evaluation of the demo (AdvBench, benign and
  safe-alarming subsets, greedy generation).

A screened round scores the global adapter once and each sampled client's adapter once. The round
time is taken as one client's training (the sampled clients train in parallel, one core each) plus
the server's evaluation plus screening; server-side CAI of the demo is left out, which makes the
share an upper bound. Writes ``benchmarks/results/screening_cost.json``.

    nice -n 10 .venv/bin/python -m benchmarks.screening_cost
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", default=str(Path(__file__).parents[1] / "fedrai" / "presets" / "demo.toml")
    )
    parser.add_argument("--redteam-probes", type=int, default=24)
    parser.add_argument("--benign-probes", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "screening_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from fedrai.config import ExperimentConfig
    from fedrai.data.client_data import client_rows, heldout_rows
    from fedrai.evaluation.server_eval import ServerEvaluator
    from fedrai.model import get_adapter_state, load_model, set_adapter_state
    from fedrai.screening.screen import build_update_screen
    from fedrai.training import train_lora
    from fedrai.transport import to_arrays

    cfg = ExperimentConfig.from_toml(
        args.preset,
        [
            "screen.enabled=true",
            f"screen.redteam_probes={args.redteam_probes}",
            f"screen.benign_probes={args.benign_probes}",
        ],
    )
    model, tokenizer = load_model(cfg.model, cfg.lora, cfg.seed)
    _say("model loaded; building the probe set")
    screen = build_update_screen(cfg, model, tokenizer)
    _say("probe set built; training one client")
    assert screen is not None
    start = get_adapter_state(model)

    rows = client_rows(cfg, 0)
    t0 = time.perf_counter()
    train_lora(
        model,
        tokenizer,
        rows,
        steps=cfg.train.local_steps,
        batch_size=cfg.train.batch_size,
        grad_accum=cfg.train.grad_accum,
        learning_rate=cfg.train.learning_rate,
        max_seq_length=cfg.model.max_seq_length,
        seed=cfg.seed,
    )
    train_s = time.perf_counter() - t0
    trained = get_adapter_state(model)
    set_adapter_state(model, start)

    _say(f"trained in {train_s:.1f} s; screening")
    per_adapter = []
    for _ in range(args.repeats):
        set_adapter_state(model, trained)
        t0 = time.perf_counter()
        screen.scores()
        per_adapter.append(time.perf_counter() - t0)
        _say(f"scored one adapter in {per_adapter[-1]:.1f} s")
    set_adapter_state(model, start)
    evaluator = ServerEvaluator(cfg, tokenizer, heldout_rows(cfg))
    t0 = time.perf_counter()
    evaluator.evaluate(model, 1)
    eval_s = time.perf_counter() - t0
    _say(f"evaluated in {eval_s:.1f} s")
    results = screen.screen(to_arrays(start), [(0, to_arrays(trained))])
    screen_s = statistics.median(per_adapter)

    sampled = max(
        int(cfg.federation.num_clients * cfg.strategy.fraction_train), cfg.strategy.min_train_clients
    )
    screen_round = (sampled + 1) * screen_s
    round_s = train_s + eval_s + screen_round
    out = {
        "benchmark": "screening_cost",
        "model": cfg.model.name_or_path,
        "lora_r": cfg.lora.r,
        "redteam_probes": len(screen.conversations),
        "benign_probes": len(screen.benign),
        "max_answer_tokens": cfg.screen.max_answer_tokens,
        "sampled_clients_per_round": sampled,
        "local_steps": cfg.train.local_steps,
        "batch_size": cfg.train.batch_size,
        "screen_seconds_per_adapter": screen_s,
        "screen_seconds_per_adapter_runs": per_adapter,
        "screen_seconds_per_round": screen_round,
        "train_seconds_per_client": train_s,
        "eval_seconds_per_round": eval_s,
        "round_seconds_estimate": round_s,
        "screen_share_per_client": screen_s / round_s,
        "screen_share_per_round": screen_round / round_s,
        "demo_trained_client_margin_change": results[0].margin_change,
        "demo_trained_client_benign_loss_change": results[0].benign_loss_change,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "platform": platform.platform(),
        "note": "round = one client's training + server evaluation + screening (server CAI excluded: "
        "share is an upper bound); timings on a shared 2-core machine, see load_average_1min",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
