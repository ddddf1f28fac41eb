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
        --seeds 1 2 3 --out RUNS/screen_raw.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import replay as replay_lib
import torch
from replay import say


def _cut(tokenizer: Any, text: str, tokens: int) -> str:
    return tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"][:tokens])


class RawProbes:
    """Per-probe per-token log-likelihoods: red-team (refusal, compliance) and benign reference answers."""

    def __init__(self, cfg: Any, tokenizer: Any, answer_tokens: int) -> None:
        from fedrai.screening.probes import build_probe_set

        probes = build_probe_set(cfg)
        self.tokenizer = tokenizer
        self.max_tokens = cfg.model.max_seq_length
        self.redteam = [[{"role": "user", "content": p.prompt}] for p in probes.redteam]
        self.redteam_answers = [
            (_cut(tokenizer, p.refusal, answer_tokens), _cut(tokenizer, p.compliance, answer_tokens))
            for p in probes.redteam
        ]
        from fedrai.data import prompt_of

        self.benign = [[{"role": "user", "content": prompt_of(r)}] for r in probes.benign]
        self.benign_answers = [(_cut(tokenizer, r["response"], answer_tokens),) for r in probes.benign]

    @torch.no_grad()
    def score(self, model: Any, state: dict) -> dict[str, list[float]]:
        """The figures of ``model`` with adapter ``state``."""
        from fedrai.evaluation.generation import shared_context_logprobs
        from fedrai.model import set_adapter_state

        set_adapter_state(model, state)

        red = shared_context_logprobs(
            model,
            self.tokenizer,
            self.redteam,
            self.redteam_answers,
            batch_size=8,
            max_tokens=self.max_tokens,
        )
        ben = shared_context_logprobs(
            model, self.tokenizer, self.benign, self.benign_answers, batch_size=8, max_tokens=self.max_tokens
        )
        return {
            "refusal": [r.per_token for r, _ in red],
            "comply": [c.per_token for _, c in red],
            "benign": [b[0].per_token for b in ben],
        }


def replay(seed: int, args: argparse.Namespace, model: Any, tokenizer: Any, start: dict) -> list[dict]:
    """One seed's federation; a row per (round, candidate) with raw probe figures (candidate -1: global)."""
    from fedrai.config import ExperimentConfig

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
    probes = RawProbes(cfg, tokenizer, cfg.screen.max_answer_tokens)
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
                **probes.score(model, global_state),
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
                    **probes.score(model, states[pid]),
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
