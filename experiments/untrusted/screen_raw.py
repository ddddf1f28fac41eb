"""Record every probe figure of every candidate on development seeds, to choose a screening signal offline.

``screen_signal.py`` chose ``margin_t`` (paired t of per-probe margin changes against the round's median
candidate) on seeds 1-3. On test seeds 0 and 4 it also excluded 4 of 18 honest rounds: honest clients keep
some harmful pairs past their filter and learn a helpful style, both of which lower the refusal margin, and a
t statistic is scale-free, so a tiny but consistent shift (round 3's updates are 6x smaller than round 1's)
reads as large as an attack. Signals that might separate better need figures that one does not record:
the compliant answers' and the benign answers' log-likelihoods per probe, for every candidate and for the
round's global adapter, over more probes. This script replays the same federation as ``screen_signal.py``
(attacker at partition 0, plain FedAvg by claimed examples, no exclusion), this time with the clients'
learning-rate schedule across rounds as the sweep runs it (``screen_signal.py`` trained every round at the
peak rate, so its round 3 updates were ten times larger than the experiment's), and writes those raw figures;
``screen_choose.py`` computes the signals from them and picks one on these seeds only.

    OMP_NUM_THREADS=2 nice -n 5 .venv/bin/python experiments/untrusted/screen_raw.py \
        --seeds 1 2 3 6 7 --out RUNS/screen_raw.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import replay as replay_lib
import torch
from replay import say


@torch.no_grad()
def probe_figures(screen: Any, model: Any, state: dict) -> dict[str, list[float]]:
    """Per-probe per-token log-likelihoods of adapter ``state``: refusal, compliant and benign answers
    (the screen's own probes and pass, ``UpdateScreen.per_probe``)."""
    from fedrai.model import set_adapter_state

    set_adapter_state(model, state)
    pairs, benign = screen.per_probe()
    return {
        "refusal": [r.per_token for r, _ in pairs],
        "comply": [c.per_token for _, c in pairs],
        "benign": [b.per_token for b in benign],
    }


def replay(seed: int, args: argparse.Namespace, model: Any, tokenizer: Any, start: dict) -> list[dict]:
    """One seed's federation; a row per (round, candidate) with raw probe figures (candidate -1: global)."""
    from fedrai.config import ExperimentConfig
    from fedrai.screening.screen import build_update_screen

    cfg = ExperimentConfig.from_toml(
        str(args.config),
        [
            *args.set,
            f"seed={seed}",
            "screen.enabled=true",
            f"screen.redteam_probes={args.redteam_probes}",
            f"screen.benign_probes={args.benign_probes}",
        ],
    )
    screen = build_update_screen(cfg, model, tokenizer)
    malicious = set(range(cfg.attack.num_malicious))  # fixed at partition 0 (replay.py)
    rows = replay_lib.client_rows(cfg, model, tokenizer, seed)
    harmful_kept = {pid: sum(r.get("origin") == "harmful" for r in rows[pid]) for pid in rows}
    say(f"seed {seed}: rows per client {[len(rows[p]) for p in sorted(rows)]}, harmful {harmful_kept}")
    global_state = {k: v.clone() for k, v in start.items()}
    out = []
    for rnd in range(1, cfg.federation.num_rounds + 1):
        out.append(
            {
                "seed": seed,
                "round": rnd,
                "client": -1,
                "malicious": False,
                **probe_figures(screen, model, global_state),
            }
        )
        states = {}
        for pid in sorted(rows):
            states[pid] = replay_lib.train_client(
                cfg, model, tokenizer, rows[pid], global_state, rnd, pid, schedule=True
            )
            update = sum(((states[pid][k] - global_state[k]) ** 2).sum() for k in global_state)
            out.append(
                {
                    "seed": seed,
                    "round": rnd,
                    "client": pid,
                    "malicious": pid in malicious,
                    "harmful_rows": harmful_kept[pid],
                    "rows": len(rows[pid]),
                    "update_norm": float(torch.sqrt(update)),
                    **probe_figures(screen, model, states[pid]),
                }
            )
        say(f"seed {seed} round {rnd} scored")
        global_state = replay_lib.fedavg(states, rows)
    return out


def main() -> None:
    parser = replay_lib.parser(__doc__.splitlines()[0], forbidden_seeds={0, 4, 5, 8, 9})
    parser.add_argument("--redteam-probes", type=int, default=32)
    parser.add_argument("--benign-probes", type=int, default=16)
    args = parser.parse_args()
    model, tokenizer, start = replay_lib.load(args)
    rows: list[dict] = []
    meta = {
        "config": str(args.config),
        "set": args.set,
        "seeds": args.seeds,
        "redteam_probes": args.redteam_probes,
        "benign_probes": args.benign_probes,
    }
    for seed in args.seeds:
        rows += replay(seed, args, model, tokenizer, start)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**meta, "rows": rows}))


if __name__ == "__main__":
    main()
