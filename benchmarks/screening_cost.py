"""Cost of server-side update screening per client per round, as a share of the round's time.

At the demo's scale (``fedrai/presets/demo.toml``: SmolLM2-135M-Instruct, LoRA r=8, 2 clients
sampled a round, 6 local steps of batch 4, screening with its defaults): measures on this machine,
one torch thread, in wall-clock and in CPU seconds of this process (the machine is shared, so the
CPU figures are the ones that do not depend on the other jobs' load),

- ``screen_*_per_adapter``: scoring one adapter on the probe set (``screen.redteam_probes``
  red-team prompts, each run once with its refusal and compliant answer scored on its KV cache,
  plus ``screen.benign_probes`` benign rows, every answer cut to ``screen.max_answer_tokens``);
- ``legacy_screen_*_per_adapter``: the same adapter scored the way screening did before it was
  made cheaper (24 + 12 probes, 48 answer tokens, each answer with its own pass over the prompt,
  whole benign answers), for a before/after on the same machine and load;
- ``train_*_per_client``: one client's local training of a round (its partition rows);
- ``eval_*_per_round``: the server's per-round evaluation of the demo (AdvBench, benign and
  safe-alarming subsets, greedy generation).

A screened round scores each sampled client's adapter, and the global adapter once when it is the
reference (``screen.reference = "global"``, the default) or the signal is ``specificity``. The round time is taken as one client's
training (the sampled clients train in parallel, one core each) plus the server's evaluation plus
screening; server-side CAI of the demo is left out, which makes the share an upper bound.

To check that the cheaper probe set still separates a harmful update, the benchmark also trains a
second adapter as a ``harmful_finetune`` attacker would (harmful pairs only, minus the probe
prompts, same steps) and reports both adapters' margin change against the global adapter, with
the current and the legacy probe settings. Writes ``benchmarks/results/screening_cost.json``.

    nice -n 10 .venv/bin/python -m benchmarks.screening_cost
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

LEGACY = {"redteam_probes": 24, "benign_probes": 12, "max_answer_tokens": 48}


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall-clock seconds and this process's CPU seconds."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def _legacy_scores(screen: Any, model: Any, tokenizer: Any, probes: Any, max_seq_length: int) -> float:
    """The margin as screening computed it before: two passes per prompt, 48-token answers, whole
    benign answers (its benign loss is computed for the cost, not returned)."""
    from fedrai.evaluation.generation import continuation_logprobs, response_loss

    def cut(text: str) -> str:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: LEGACY["max_answer_tokens"]]
        return tokenizer.decode(ids)

    convs = [[{"role": "user", "content": p.prompt}] for p in probes.redteam]
    kw = {"batch_size": screen.cfg.batch_size, "max_tokens": max_seq_length}
    refuse = continuation_logprobs(model, tokenizer, convs, [cut(p.refusal) for p in probes.redteam], **kw)
    comply = continuation_logprobs(model, tokenizer, convs, [cut(p.compliance) for p in probes.redteam], **kw)
    response_loss(model, tokenizer, probes.benign, screen.cfg.batch_size, max_seq_length=max_seq_length)
    return statistics.fmean(r.per_token - c.per_token for r, c in zip(refuse, comply, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset", default=str(Path(__file__).parents[1] / "fedrai" / "presets" / "demo.toml")
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--set", action="append", default=[], help="screening overrides, e.g. screen.reference=round_median"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "screening_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from fedrai.clients.attack import harmful_training_rows
    from fedrai.config import ExperimentConfig
    from fedrai.data.client_data import client_rows, heldout_rows
    from fedrai.evaluation.server_eval import ServerEvaluator
    from fedrai.model import get_adapter_state, load_model, set_adapter_state
    from fedrai.screening.probes import build_probe_set
    from fedrai.screening.screen import build_update_screen, specificities
    from fedrai.training import train_lora

    cfg = ExperimentConfig.from_toml(args.preset, ["screen.enabled=true", *args.set])
    legacy_cfg = ExperimentConfig.from_toml(
        args.preset, ["screen.enabled=true"] + [f"screen.{k}={v}" for k, v in LEGACY.items()]
    )
    model, tokenizer = load_model(cfg.model, cfg.lora, cfg.seed)
    _say("model loaded; building the probe sets")
    screen = build_update_screen(cfg, model, tokenizer)
    assert screen is not None
    with torch.no_grad():
        legacy_probes = build_probe_set(legacy_cfg)
    start = get_adapter_state(model)

    def train(rows: list) -> dict:
        set_adapter_state(model, start)
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
        return {k: v.detach().clone() for k, v in get_adapter_state(model).items()}

    _say("training one honest client")
    honest, train_wall, train_cpu = _timed(lambda: train(client_rows(cfg, 0)))
    _say(f"trained in {train_wall:.1f} s wall, {train_cpu:.1f} s CPU; training a harmful_finetune adapter")
    harmful = train(harmful_training_rows(cfg))

    new_runs, old_runs = [], []
    for _ in range(args.repeats):
        set_adapter_state(model, honest)
        _, wall, cpu = _timed(screen.scores)
        new_runs.append((wall, cpu))
        _, wall, cpu = _timed(
            lambda: _legacy_scores(screen, model, tokenizer, legacy_probes, cfg.model.max_seq_length)
        )
        old_runs.append((wall, cpu))
        _say(f"one adapter: {new_runs[-1][0]:.1f} s wall now, {old_runs[-1][0]:.1f} s wall the legacy way")

    # Every adapter scored once with the current probes: margins, and with benign probes the specificity
    current = {}
    for label, state in (("global", start), ("honest", honest), ("harmful", harmful)):
        set_adapter_state(model, state)
        current[label] = screen.scores()
    separation: dict[str, dict[str, float]] = {
        "current": {
            "honest_margin_change": current["honest"].margin - current["global"].margin,
            "harmful_margin_change": current["harmful"].margin - current["global"].margin,
        }
    }
    if screen.benign_answers:  # against the global adapter: an index in [-1, 1]
        index = specificities([(0, current["honest"]), (1, current["harmful"])], current["global"], "global")
        separation["current"].update({"honest_specificity": index[0], "harmful_specificity": index[1]})
    legacy = {}
    for label, state in (("global", start), ("honest", honest), ("harmful", harmful)):
        set_adapter_state(model, state)
        legacy[label] = _legacy_scores(screen, model, tokenizer, legacy_probes, cfg.model.max_seq_length)
    separation["legacy"] = {
        "honest_margin_change": legacy["honest"] - legacy["global"],
        "harmful_margin_change": legacy["harmful"] - legacy["global"],
    }
    _say(f"margin changes: {separation}")

    set_adapter_state(model, start)
    evaluator = ServerEvaluator(cfg, tokenizer, heldout_rows(cfg))
    _, eval_wall, eval_cpu = _timed(lambda: evaluator.evaluate(model, 1))
    _say(f"evaluated in {eval_wall:.1f} s wall, {eval_cpu:.1f} s CPU")

    sampled = max(
        int(cfg.federation.num_clients * cfg.strategy.fraction_train), cfg.strategy.min_train_clients
    )
    # the global adapter is scored once a round when it is the reference or the signal reads gains over it
    adapters = sampled + (1 if cfg.screen.reference == "global" or cfg.screen.signal == "specificity" else 0)
    legacy_adapters = sampled + 1  # it always scored the global adapter

    def shares(per_adapter: float, n: int, train_s: float, eval_s: float) -> dict[str, float]:
        round_s = train_s + eval_s + n * per_adapter
        return {
            "screen_seconds_per_round": n * per_adapter,
            "round_seconds_estimate": round_s,
            "screen_share_per_client": per_adapter / round_s,
            "screen_share_per_round": n * per_adapter / round_s,
        }

    new_wall = statistics.median(w for w, _ in new_runs)
    new_cpu = statistics.median(c for _, c in new_runs)
    old_wall = statistics.median(w for w, _ in old_runs)
    old_cpu = statistics.median(c for _, c in old_runs)
    out = {
        "benchmark": "screening_cost",
        "model": cfg.model.name_or_path,
        "lora_r": cfg.lora.r,
        "overrides": args.set,
        "redteam_probes": len(screen.conversations),
        "benign_probes": len(screen.benign_answers),
        "signal": cfg.screen.signal,
        "max_answer_tokens": cfg.screen.max_answer_tokens,
        "reference": cfg.screen.reference,
        "sampled_clients_per_round": sampled,
        "adapters_scored_per_round": adapters,
        "local_steps": cfg.train.local_steps,
        "batch_size": cfg.train.batch_size,
        "train_seconds_per_client": {"wall": train_wall, "cpu": train_cpu},
        "eval_seconds_per_round": {"wall": eval_wall, "cpu": eval_cpu},
        "screen_seconds_per_adapter": {"wall": new_wall, "cpu": new_cpu},
        "screen_seconds_per_adapter_runs": [{"wall": w, "cpu": c} for w, c in new_runs],
        "cpu": shares(new_cpu, adapters, train_cpu, eval_cpu),
        "wall": shares(new_wall, adapters, train_wall, eval_wall),
        "legacy": {
            **LEGACY,
            "adapters_scored_per_round": legacy_adapters,
            "screen_seconds_per_adapter": {"wall": old_wall, "cpu": old_cpu},
            "screen_seconds_per_adapter_runs": [{"wall": w, "cpu": c} for w, c in old_runs],
            "cpu": shares(old_cpu, legacy_adapters, train_cpu, eval_cpu),
            "wall": shares(old_wall, legacy_adapters, train_wall, eval_wall),
        },
        "speedup_per_adapter_cpu": old_cpu / new_cpu,
        "margin_change_vs_global": separation,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": os.getloadavg()[0],
        "platform": platform.platform(),
        "note": "round = one client's training + server evaluation + screening (server CAI excluded: "
        "share is an upper bound); 'cpu' = this process's CPU seconds (one torch thread), robust to "
        "the shared machine's load; 'wall' depends on it (see load_average_1min_at_end)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
