#!/bin/bash
# Recipe, seed 0, with per-round gate sets large enough for the gate's bounds (24 MT-Bench, 24 safe-alarming).
cd "$(git rev-parse --show-toplevel)"
export RAY_worker_niceness=1 OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
nice -n 1 .venv/bin/fedrai run experiments/guarded/base.toml --out runs/guarded-variant/recipe-gate24__seed0 \
  --set seed=0 --set "setting='FL + filter + CAI recipe, gate sets 24'" \
  --set safety.enabled=true --set 'cai.placement="server"' --set gate.enabled=true \
  --set 'cai.server_prompts_source="embedded:redteam-pool"' --set cai.server_prompts_per_round=16 \
  --set cai.server_assume_harmful=true --set 'cai.server_benign_source="embedded:instructlab"' \
  --set cai.server_benign_per_round=8 --set cai.server_contrast_per_round=8 --set cai.server_steps=16 \
  --set cai.server_learning_rate=2e-4 --set cai.max_tries=1 --set 'cai.objective="sft"' --set data.contrast_fraction=0.1 \
  --set eval.benign_per_round=24 --set eval.alarming_per_round=24
