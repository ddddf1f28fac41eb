#!/bin/bash
# The recipe (guarded.toml, second version) with DPO added to the server step: each round 16 SFT steps,
# then 16 DPO steps on the red-team pairs (harm-naming refusal over the model's answer) and the benign and
# contrast anchor pairs (the reference / helpful answer over a refusal), which push against refusing safe
# prompts with alarming words. Seed 0, a design check before the other seeds.
cd "$(git rev-parse --show-toplevel)"
export RAY_worker_niceness=1 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
OUT=${OUT:-runs/guarded-variant/recipe-dpo__seed0}
nice -n 1 .venv/bin/fedrai run experiments/guarded/base.toml --out "$OUT" \
  --set seed=0 --set "setting='FL + filter + CAI recipe + DPO'" \
  --set safety.enabled=true --set 'cai.placement="server"' --set gate.enabled=true \
  --set 'gate.fallback="aggregate"' --set gate.max_alarming_refusal_increase=0.25 \
  --set 'cai.server_prompts_source="embedded:redteam-pool"' --set cai.server_prompts_per_round=16 \
  --set cai.server_assume_harmful=true --set 'cai.server_benign_source="embedded:instructlab"' \
  --set cai.server_benign_per_round=8 --set cai.server_contrast_per_round=8 --set cai.server_steps=16 \
  --set cai.server_learning_rate=2e-4 --set cai.max_tries=1 --set 'cai.objective="sft+dpo"' \
  --set data.contrast_fraction=0.1
