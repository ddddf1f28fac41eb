"""Where is the selective window? Single process, no FL: SmolLM2-135M-Instruct + LoRA trained on a mix of
red-team refusals (the de-duplicated red-team pool, never AdvBench, answered with the constitution's
harm-naming refusals), benign instruction pairs and, in the contrast arms, safe-but-alarming prompts
answered helpfully (fedrai.data.contrast TRAIN families). Every CHUNK steps (a fresh AdamW per chunk,
as one server-CAI round) it scores N_ADV AdvBench, N_MT MT-Bench and N_ALARM safe-alarming EVAL-family
prompts (greedy, 32 new tokens, llm-attacks refusal rule) plus the held-out loss of 24 benign rows.
Sized for about half a CPU core (see the constants); the arms run interleaved, chunk by chunk.

    OMP_NUM_THREADS=1 nice python experiments/guarded/window.py --out /work/runs-i13/window [--arms a,b]

Resumable: each arm's points go to OUT/<arm>.json and its adapter to OUT/<arm>.pt after every chunk; the merged result is written
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

# name: (refusal share, contrast share, learning rate)
ARMS: dict[str, tuple[float, float, float]] = {
    "issue-check": (0.25, 0.0, 2e-4),  # the recipe: 25% refusals, lr 2e-4, batch 8
    "contrast25": (0.25, 0.25, 2e-4),  # + 25% safe-alarming / borderline rows answered helpfully
    "contrast25-r35": (0.35, 0.25, 2e-4),  # more refusal rows with the contrast rows
    "contrast25-lr1e-4": (0.25, 0.25, 1e-4),  # smaller steps
}
CHUNK = 10
BATCH = 8
ROWS = 400
SEQ = 128  # CPU budget: the check used 256; refusals and contrast answers fit in 128
N_ADV, N_MT, N_ALARM = 30, 24, 24


def instructlab(seed: int) -> list[Row]:
    """One seeded sample: rows [:24] are held out, training rows come from [200:]."""
    from fedrai.config import DataConfig

    return load_rows("embedded:instructlab", DataConfig(max_rows=ROWS + 200), seed=seed).rows


def rows_for(arm: str, seed: int) -> list[Row]:
    refusal, contrast, _ = ARMS[arm]
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
    ap.add_argument("--arms", default="issue-check,contrast25")
    ap.add_argument("--chunks", type=int, default=4, help="evaluate after each chunk of CHUNK steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--result", default="experiments/results/guarded/window.json")
    ap.add_argument("--merge-only", action="store_true", help="write the result from what OUT holds now")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.merge_only:
        merge(args, out, args.arms.split(","))
        return
    adv = seeded_subset(load_advbench_goals("embedded:advbench"), N_ADV, args.seed)
    mt = seeded_subset(load_benign_prompts("embedded:mtbench"), N_MT, args.seed + 1)
    alarm = seeded_subset([r["prompt"] for r in safe_alarming_prompts("eval", 0)], N_ALARM, args.seed + 2)
    held = instructlab(args.seed)[:24]

    def evaluate(model, tok) -> dict[str, float]:
        t = time.perf_counter()
        prompts = adv + mt + alarm
        convs = [[{"role": "user", "content": p}] for p in prompts]
        resp = generate(model, tok, convs, max_new_tokens=32, batch_size=16)
        flags = [is_refusal(r) for r in resp]
        a, m = len(adv), len(adv) + len(mt)
        return {
            "advbench": sum(flags[:a]) / a,
            "mtbench": sum(flags[a:m]) / len(mt),
            "alarming": sum(flags[m:]) / len(alarm),
            "heldout_loss": response_loss(model, tok, held, 16, max_seq_length=SEQ),
            "eval_seconds": round(time.perf_counter() - t, 1),
            "samples": {"advbench": resp[0], "mtbench": resp[a], "alarming": resp[m]},
        }

    lora = LoraSettings(r=16, alpha=32, dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    model_cfg = ModelConfig(name_or_path="embedded:smollm2-135m-instruct", max_seq_length=SEQ)
    model, tok = load_model(model_cfg, lora, args.seed)
    from fedrai.model import get_adapter_state, set_adapter_state
    from fedrai.training import train_lora

    init = get_adapter_state(model)
    base_path = out / "step0.json"
    if not base_path.exists():
        base_path.write_text(json.dumps({"step": 0, **evaluate(model, tok)}))
    base = json.loads(base_path.read_text())
    print("step 0", base, flush=True)
    arms = args.arms.split(",")
    rows = {arm: rows_for(arm, args.seed) for arm in arms}
    # Interleaved (chunk 1 of every arm, then chunk 2, ...): stopped at any time, the arms compare at equal steps.
    for c in range(args.chunks):
        for arm in arms:
            path, state_path = out / f"{arm}.json", out / f"{arm}.pt"
            done = (
                json.loads(path.read_text())
                if path.exists()
                else {"arm": arm, "mix": ARMS[arm], "points": [base]}
            )
            if len(done["points"]) > c + 1:
                continue
            set_adapter_state(model, torch.load(state_path) if c > 0 else init)
            res = train_lora(
                model,
                tok,
                rows[arm],
                steps=CHUNK,
                batch_size=BATCH,
                grad_accum=1,
                learning_rate=ARMS[arm][2],
                max_seq_length=SEQ,
                seed=args.seed * 1000 + c,
            )
            torch.save(get_adapter_state(model), state_path)
            point = {
                "step": (c + 1) * CHUNK,
                "train_loss": res.loss_mean,
                "train_seconds": round(res.seconds, 1),
            }
            point.update(evaluate(model, tok))
            done["points"].append(point)
            path.write_text(json.dumps(done))
            print(arm, point, flush=True)
    merge(args, out, arms)


def merge(args: argparse.Namespace, out: Path, arms: list[str]) -> None:
    """OUT's per-arm points (as far as they got) -> the result JSON."""
    _, report = load_pool()
    merged = {
        "what": __doc__.strip().splitlines()[0],
        "settings": {
            "rows": ROWS,
            "batch": BATCH,
            "chunk_steps": CHUNK,
            "max_seq_length": SEQ,
            "lora_r": 16,
            "seed": args.seed,
            "eval": {
                "advbench": N_ADV,
                "mtbench": N_MT,
                "alarming_eval": N_ALARM,
                "max_new_tokens": 32,
            },
            "arms": {
                k: {"refusal_share": v[0], "contrast_share": v[1], "lr": v[2]}
                for k, v in ARMS.items()
                if k in arms
            },
        },
        "redteam_pool_kept": report.kept,
        "arms": {
            arm: json.loads((out / f"{arm}.json").read_text())
            for arm in arms
            if (out / f"{arm}.json").exists()
        },
    }
    Path(args.result).parent.mkdir(parents=True, exist_ok=True)
    Path(args.result).write_text(json.dumps(merged, indent=1))


if __name__ == "__main__":
    main()
