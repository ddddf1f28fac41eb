"""Train the cross-encoder (design b) on one fold and score per (source, set); resumable per fold.

    nice -n 10 python benchmarks/filter_cross_eval.py --fold in_split --out /work/runs-i12/loso_b.json

``--fold in_split`` trains on every source's train rows and scores test rows; ``--fold without:S``
leaves source S out and scores all of S's rows. Held-out contrast families and AdvBench are scored
in every fold (``--max-per-group`` rows per (source, set), to keep a fold short on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fold", default="in_split")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model-dir", type=Path, default=Path("/work/runs-i12/cross"))
    ap.add_argument("--cap", type=int, default=150)
    ap.add_argument("--max-length", type=int, default=96)
    ap.add_argument("--max-per-group", type=int, default=120)
    ap.add_argument(
        "--max-fpr", type=float, default=None, help="re-choose the saved model's thresholds first"
    )
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from fedrai.safety.filter_data import filter_examples, source_of
    from fedrai.safety.filters.cross_encoder import CrossEncoder
    from fedrai.safety.train_cross import rethreshold, train_cross_encoder

    examples = filter_examples(seed=0)
    src = None if args.fold == "in_split" else args.fold.split(":", 1)[1]
    trainable = [e for e in examples if e.split in ("train", "val", "test") and source_of(e) != "advbench"]
    train_rows = [e for e in trainable if src is None or source_of(e) != src]
    mdir = args.model_dir / args.fold.replace(":", "_")
    t0 = time.time()
    if not (mdir / "meta.json").is_file():
        train_cross_encoder(
            mdir,
            train_rows,
            max_length=args.max_length,
            cap_per_group=args.cap,
            log=lambda m: print(m, flush=True),
        )
    if args.max_fpr is not None:
        print("thresholds", rethreshold(mdir, train_rows, args.max_fpr), flush=True)
    ce = CrossEncoder.load(mdir)
    tested = [e for e in trainable if (e.split == "test" if src is None else source_of(e) == src)]
    always = [e for e in examples if source_of(e) == "advbench" or e.split == "heldout"]
    rng = random.Random(0)
    result = json.loads(args.out.read_text()) if args.out.is_file() else {}
    fold: dict[str, dict] = {"train_seconds": round(time.time() - t0, 1)}
    n_scored, t_score = 0, 0.0
    for name, rows in (("tested", tested), ("always_heldout", always)):
        groups: dict[tuple[str, str], list] = defaultdict(list)
        for e in rows:
            groups[
                (f"{source_of(e)}/{e.set}", "prompt" if e.response is None else "response_in_context")
            ].append(e)
        table = {}
        for (key, mode), part in sorted(groups.items()):
            part = rng.sample(part, min(args.max_per_group, len(part)))
            t1 = time.time()
            p = ce.predict_proba(mode, [e.prompt for e in part], [e.response for e in part])
            t_score += time.time() - t1
            n_scored += len(part)
            table[key] = {"n": len(part), "flagged": round(sum(x >= 0.5 for x in p) / len(part), 4)}
            print(name, key, table[key], flush=True)
        fold[name] = table
    fold["score_rows_per_s"] = round(n_scored / t_score, 1)
    result[args.fold] = fold
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print("done", args.fold, fold["score_rows_per_s"], "rows/s", flush=True)


if __name__ == "__main__":
    main()
