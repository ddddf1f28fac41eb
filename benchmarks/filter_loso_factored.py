"""Leave-one-source-out figures for the factored filter (design c), in ``filter_loso.py``'s format.

For each training source S: fit the heads on every other source's train rows (thresholds on their
val rows), score all of S's rows; plus the in-split run (train rows, scored on test rows). Never
trained on, scored in every run: the contrast families held out for eval, AdvBench, and the 80
MT-Bench questions (both turns, prompt mode: a benign source no design was built from). The same
never-trained MT-Bench prompts are scored with ``--compare`` heads (embedded ``Head`` files: design
a's in-split head, the previous shipped head) so the table has them side by side.

    nice -n 15 python benchmarks/filter_loso_factored.py --out /work/runs-i12b/loso_c.json \
        --embed-cache /work/runs-i12b/emb_fp32.npz [--response-harm] [--head-out FILE.npz]

``--head-out``: also write the in-split fold's head (what ships as the default, with ``.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.filter_loso import ALWAYS_TEST, LOSO_SOURCES


def mtbench_prompts() -> list[str]:
    """Both turns of the 80 MT-Bench questions (offline asset ``embedded:mtbench``)."""
    from fedrai.assets import resolve

    rows = [json.loads(x) for x in Path(resolve("embedded:mtbench")).read_text().splitlines() if x.strip()]
    return [t for r in rows for t in r.get("turns", []) if t.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--embed-cache", type=Path, required=True)
    ap.add_argument("--design-key", default="design_c")
    ap.add_argument("--max-fpr", type=float, default=0.03)
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--response-harm", action="store_true")
    ap.add_argument("--head-out", type=Path, default=None)
    ap.add_argument("--compare", nargs="*", default=[], help="name=embedded-head.npz (or name=shipped)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from fedrai.safety.embedding_cache import CachedEncoder, encoder_tag
    from fedrai.safety.filter_data import filter_examples, source_of
    from fedrai.safety.filters.embedded import Head, SentenceEncoder, embed_features
    from fedrai.safety.labelled import Example
    from fedrai.safety.train_factored import EmbeddedRows, fit_factored, flag_rates

    examples = filter_examples(seed=0)
    mt = [
        Example(p, None, 0, "benign_prompt", "heldout", f"mtbench:{i}")
        for i, p in enumerate(mtbench_prompts())
    ]
    rows = examples + mt
    enc = CachedEncoder(
        SentenceEncoder("embedded:minilm-l6-v2", 128, dtype="float32", threads=1),
        args.embed_cache,
        encoder_tag("embedded:minilm-l6-v2", 128, "float32"),
    )
    t0 = time.time()
    emb = EmbeddedRows(enc, rows)
    enc.save()
    print(f"embedded {len(rows)} rows ({time.time() - t0:.0f} s)", flush=True)
    src = np.array([source_of(e) for e in rows])
    keys = np.array([f"{s}/{e.set}" for s, e in zip(src, rows, strict=True)])
    trainable = np.isin(emb.split, ["train", "val", "test"]) & ~np.isin(src, ALWAYS_TEST)
    always = np.isin(src, ALWAYS_TEST) | (emb.split == "heldout")

    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    folds = [("in_split", None), *((f"without:{s}", s) for s in LOSO_SOURCES)]
    for name, left_out in folds:
        t1 = time.time()
        keep = trainable & (src != left_out) if left_out else trainable
        head = fit_factored(
            emb,
            train=keep & (emb.split == "train"),
            val=keep & (emb.split == "val"),
            max_fpr=args.max_fpr,
            c=args.c,
            response_harm=args.response_harm,
        )
        tested = trainable & ((src == left_out) if left_out else (emb.split == "test"))
        result.setdefault(args.design_key, {})[name] = {
            "tested": flag_rates(head, emb, tested, keys),
            "always_heldout": flag_rates(head, emb, always, keys),
            "thresholds_raw": {k: round(v, 4) for k, v in head.thresholds.items()},
            "train_seconds": round(time.time() - t1, 1),
            "train_rows": int(np.sum(keep & (emb.split == "train"))),
        }
        if name == "in_split" and args.head_out:
            head.meta = {
                "design": "factored",
                "encoder": "embedded:minilm-l6-v2",
                "max_seq_length": 128,
                "encoder_dtype": "float32",
                "seed": 0,
                "max_val_fpr": args.max_fpr,
                "C": args.c,
                "response_harm": args.response_harm,
                "thresholds_raw": head.thresholds,
                "made_by": "benchmarks/filter_loso_factored.py, fold in_split",
            }
            head.save(args.head_out)
            args.head_out.with_suffix(".json").write_text(
                json.dumps(
                    {**head.meta, "test": result[args.design_key][name]["tested"]}, indent=2, sort_keys=True
                )
                + "\n"
            )
        print(f"{name}: {time.time() - t1:.1f} s", flush=True)
    mt_mask = src == "mtbench"
    for spec in args.compare:
        label, _, path = spec.partition("=")
        h = Head.load(None if path == "shipped" else path).heads["prompt"]
        part = [e for e in rows if source_of(e) == "mtbench"]
        x = embed_features(enc, h.features, [e.prompt for e in part], [e.prompt for e in part], h.proj)
        result.setdefault("mtbench_prompt_flagged", {})[label] = round(
            float(np.mean(h.predict_proba(x) >= 0.5)), 4
        )
    result.setdefault("mtbench_prompt_flagged", {})[args.design_key] = (
        result[args.design_key]["in_split"]["always_heldout"].get("mtbench/benign_prompt", {}).get("flagged")
    )
    result["mtbench_rows"] = int(mt_mask.sum())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
