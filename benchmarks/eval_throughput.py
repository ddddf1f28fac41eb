"""Evaluation throughput: batched vs one-prompt-at-a-time greedy generation.

On the embedded default model (SmolLM2-135M-Instruct), N AdvBench prompts, greedy, M new tokens.
Reports prompts/s for batch size 1 and each batched size, the speedup, and whether batched and
unbatched greedy outputs agree (exactly, per prompt). Writes benchmarks/results/eval_throughput.json.

    .venv/bin/python benchmarks/eval_throughput.py            # 32 prompts, 48 tokens, batch 1 vs 8/16/32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--advbench", default="embedded:advbench")
    parser.add_argument("--n", type=int, default=32, help="AdvBench prompts (seeded subset).")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-sizes", default="8,16,32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default, one per core)."
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_throughput.json"))
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fedrai.assets import resolve
    from fedrai.evaluation.advbench import load_advbench_goals
    from fedrai.evaluation.generation import generate
    from fedrai.evaluation.scorers import refusal_rate
    from fedrai.evaluation.server_eval import seeded_subset

    path = resolve(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompts = seeded_subset(load_advbench_goals(args.advbench), args.n, args.seed)
    convs = [[{"role": "user", "content": p}] for p in prompts]
    load_before = os.getloadavg()

    def timed(batch_size: int) -> tuple[list[str], float]:
        generate(model, tokenizer, convs[:2], max_new_tokens=4, batch_size=2)  # warm-up
        start = time.perf_counter()
        out = generate(model, tokenizer, convs, max_new_tokens=args.max_new_tokens, batch_size=batch_size)
        return out, time.perf_counter() - start

    runs: dict[str, dict] = {}
    reference, seconds = timed(1)
    runs["1"] = {"seconds": round(seconds, 2), "prompts_per_s": round(len(prompts) / seconds, 3)}
    print(f"batch 1: {seconds:.1f} s, {len(prompts) / seconds:.2f} prompts/s")
    for bs in [int(b) for b in args.batch_sizes.split(",") if b]:
        out, seconds = timed(bs)
        mismatches = [
            {"index": i, "first_diff_char": _first_diff(a, b), "unbatched": a, "batched": b}
            for i, (a, b) in enumerate(zip(reference, out, strict=True))
            if a != b
        ]
        runs[str(bs)] = {
            "seconds": round(seconds, 2),
            "prompts_per_s": round(len(prompts) / seconds, 3),
            "speedup_vs_batch_1": round(runs["1"]["seconds"] / seconds, 2),
            "outputs_identical_to_unbatched": len(prompts) - len(mismatches),
            "mismatches": mismatches,
        }
        print(
            f"batch {bs}: {seconds:.1f} s, {len(prompts) / seconds:.2f} prompts/s, "
            f"x{runs[str(bs)]['speedup_vs_batch_1']}, identical {len(prompts) - len(mismatches)}/{len(prompts)}"
        )
    best = max((k for k in runs if k != "1"), key=lambda k: runs[k]["prompts_per_s"], default="1")
    result = {
        "benchmark": "eval_throughput",
        "model": args.model,
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "decoding": "greedy, left-padded, chat template",
        "runs_by_batch_size": runs,
        "best_batch_size": int(best),
        "best_speedup": runs[best].get("speedup_vs_batch_1", 1.0),
        "target_speedup": 4.0,
        "advbench_refusal_rate_llm_attacks": refusal_rate(reference),
        "sample_response": {"prompt": prompts[0], "response": reference[0]},
        "host": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "command": "python benchmarks/eval_throughput.py "
        + f"--n {args.n} --max-new-tokens {args.max_new_tokens} --batch-sizes {args.batch_sizes}"
        + (f" --threads {args.threads}" if args.threads else ""),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"best: batch {best}, x{result['best_speedup']} (target x4); wrote {args.out}")


def _first_diff(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


if __name__ == "__main__":
    main()
