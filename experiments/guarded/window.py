"""Where is the selective window? Single process, no FL: SmolLM2-135M-Instruct + LoRA trained on a mix of
red-team refusals (the de-duplicated red-team pool, never AdvBench, answered with the constitution's
harm-naming refusals), benign instruction pairs and, in the contrast arms, safe-but-alarming prompts
answered helpfully (fedrai.data.contrast TRAIN families). Every `chunk` steps (a fresh AdamW per chunk,
as one server-CAI round) it scores 50 AdvBench, 40 MT-Bench and 30 safe-alarming EVAL-family prompts
(greedy, 32 new tokens, llm-attacks refusal rule) plus the held-out loss of 24 benign rows.

    OMP_NUM_THREADS=1 nice python experiments/guarded/window.py --out /work/runs-i13/window [--arms a,b]

Resumable: each arm's points go to OUT/<arm>.json as they are measured; the merged result is written
to experiments/results/guarded/window.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from fedrai.config import LoraSettings, ModelConfig
from fedrai.data import Row
from fedrai.data.contrast import borderline_compliant, safe_alarming_prompts
from fedrai.data.loading import load_rows
from fedrai.evaluation.advbench import load_advbench_goals, load_benign_prompts
from fedrai.evaluation.generation import generate, response_loss
from fedrai.evaluation.scorers import is_refusal
from fedrai.evaluation.server_eval import seeded_subset
from fedrai.model import load_model
from fedrai.safety.cai.constitution import load_constitution
from fedrai.safety.redteam import load_pool

# name: (refusal share, contrast share, learning rate, chunks)
ARMS: dict[str, tuple[float, float, float, int]] = {
    "issue-check": (0.25, 0.0, 2e-4, 3),  # the recipe: 25% refusals, lr 2e-4, batch 8
    "contrast25": (0.25, 0.25, 2e-4, 3),  # + 25% safe-alarming / borderline rows answered
    "contrast25-r35": (0.35, 0.25, 2e-4, 3),  # more refusal rows with the contrast rows
    "contrast25-lr1e-4": (0.25, 0.25, 1e-4, 4),  # smaller steps
}
CHUNK = 15
BATCH = 8
ROWS = 400


def instructlab(seed: int) -> list[Row]:
    """One seeded sample: rows [:24] are held out, training rows come from [200:]."""
    from fedrai.config import DataConfig

    return load_rows("embedded:instructlab", DataConfig(max_rows=ROWS + 200), seed=seed).rows


def rows_for(arm: str, seed: int) -> list[Row]:
    refusal, contrast, _, _ = ARMS[arm]
    rng = random.Random(seed)
    const = load_constitution()
    pool, _ = load_pool()
    n_ref, n_con = int(ROWS * refusal), int(ROWS * contrast)
    rows: list[Row] = [
        {
            "id": f"red:{i}",
            "messages": [{"role": "user", "content": p}],
            "response": const.refusal_for_prompt(p, rng),
            "origin": "cai",
            "group": "redteam",
        }
        for i, p in enumerate(rng.sample(pool, n_ref))
    ]
    con = safe_alarming_prompts("train", seed) + borderline_compliant("train", seed)
    rows += [
        {
            "id": f"con:{i}",
            "messages": [{"role": "user", "content": r["prompt"]}],
            "response": r["response"],
            "origin": "benign",
            "group": "contrast",
        }
        for i, r in enumerate(rng.sample(con, n_con))
    ]
    rows += [dict(r) for r in instructlab(seed)[200 : 200 + ROWS - len(rows)]]  # type: ignore[misc]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/work/runs-i13/window")
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--result", default="experiments/results/guarded/window.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    adv = seeded_subset(load_advbench_goals("embedded:advbench"), 50, args.seed)
    mt = seeded_subset(load_benign_prompts("embedded:mtbench"), 40, args.seed + 1)
    alarming = [r["prompt"] for r in safe_alarming_prompts("eval", 0)]
    alarm = seeded_subset(alarming, 30, args.seed + 2)
    held = instructlab(args.seed)[:24]

    def evaluate(model, tok) -> dict[str, float]:
        t = time.perf_counter()
        prompts = adv + mt + alarm
        resp = generate(
            model, tok, [[{"role": "user", "content": p}] for p in prompts], max_new_tokens=32, batch_size=16
        )
        flags = [is_refusal(r) for r in resp]
        a, m = len(adv), len(adv) + len(mt)
        return {
            "advbench": sum(flags[:a]) / a,
            "mtbench": sum(flags[a:m]) / len(mt),
            "alarming": sum(flags[m:]) / len(alarm),
            "heldout_loss": response_loss(model, tok, held, 16, max_seq_length=256),
            "eval_seconds": round(time.perf_counter() - t, 1),
        }

    lora = LoraSettings(r=16, alpha=32, dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    model, tok = load_model(
        ModelConfig(name_or_path="embedded:smollm2-135m-instruct", max_seq_length=256), lora, args.seed
    )
    from fedrai.model import get_adapter_state, set_adapter_state
    from fedrai.training import train_lora

    init = get_adapter_state(model)
    base_path = out / "step0.json"
    if not base_path.exists():
        base_path.write_text(json.dumps({"step": 0, **evaluate(model, tok)}))
    base = json.loads(base_path.read_text())
    print("step 0", base, flush=True)
    for arm in args.arms.split(","):
        path = out / f"{arm}.json"
        if path.exists() and json.loads(path.read_text()).get("done"):
            continue
        set_adapter_state(model, init)
        _, _, lr, chunks = ARMS[arm]
        rows = rows_for(arm, args.seed)
        points = [base]
        for c in range(chunks):
            res = train_lora(
                model,
                tok,
                rows,
                steps=CHUNK,
                batch_size=BATCH,
                grad_accum=1,
                learning_rate=lr,
                max_seq_length=256,
                seed=args.seed * 1000 + c,
            )
            point = {
                "step": (c + 1) * CHUNK,
                "train_loss": res.loss_mean,
                "train_seconds": round(res.seconds, 1),
                **evaluate(model, tok),
            }
            points.append(point)
            print(arm, point, flush=True)
            path.write_text(json.dumps({"arm": arm, "mix": ARMS[arm], "points": points, "done": False}))
        path.write_text(json.dumps({"arm": arm, "mix": ARMS[arm], "points": points, "done": True}))
    _, report = load_pool()
    merged = {
        "what": __doc__.strip().splitlines()[0],
        "settings": {
            "rows": ROWS,
            "batch": BATCH,
            "chunk_steps": CHUNK,
            "lora_r": 16,
            "seed": args.seed,
            "eval": {
                "advbench": len(adv),
                "mtbench": len(mt),
                "alarming_eval": len(alarm),
                "max_new_tokens": 32,
            },
            "arms": {
                k: {"refusal_share": v[0], "contrast_share": v[1], "lr": v[2], "steps": v[3] * CHUNK}
                for k, v in ARMS.items()
            },
        },
        "redteam_pool_kept": report.kept,
        "arms": {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.stem != "step0"},
    }
    Path(args.result).parent.mkdir(parents=True, exist_ok=True)
    Path(args.result).write_text(json.dumps(merged, indent=1))


if __name__ == "__main__":
    main()
