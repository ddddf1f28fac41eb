"""Leave-one-source-out figures for the embedded head (design a) and the previous shipped head.

For each training source S: train the head on every other source's train rows, score all of S's
rows; plus the in-split run (train on all train rows, score test rows). The contrast families held
out for eval and AdvBench are scored in every run (never trained on). Flag rates at 0.5, per
(source, set): pair rows in ``response_in_context`` mode, prompt-only rows in ``prompt`` mode.

Resumable: each fold's figures go to ``--out`` as soon as they are done; embeddings are cached.

    nice -n 10 python benchmarks/filter_loso.py --out /work/runs-i12/loso_a.json \
        --embed-cache /work/runs-i12/emb_fp32.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

LOSO_SOURCES = (
    "harmful-pairs",
    "objective-evals",
    "refusal-evals",
    "strongreject",
    "instructlab",
    "contrast-safe",
    "contrast-harmful",
    "contrast-borderline",
    "everyday",
)
ALWAYS_TEST = ("advbench",)


def flag_table(head: Any, encoder: Any, rows: list[Any]) -> dict[str, dict[str, float]]:
    """{source/set: {n, flagged}} for ``rows`` under ``head`` (embedded ``Head``)."""
    from fedrai.safety.filter_data import source_of
    from fedrai.safety.filters.embedded import embed_features

    out: dict[str, dict[str, float]] = {}
    for mode in ("prompt", "response_in_context"):
        part = [e for e in rows if (e.response is None) == (mode == "prompt")]
        if not part:
            continue
        h = head.heads[mode]
        x = embed_features(
            encoder, h.features, [e.prompt for e in part], [e.response or e.prompt for e in part], h.proj
        )
        p = h.predict_proba(x)
        keys = np.array([f"{source_of(e)}/{e.set}" for e in part])
        for k in sorted(set(keys.tolist())):
            sel = p[keys == k]
            out[k] = {"n": int(len(sel)), "flagged": round(float(np.mean(sel >= 0.5)), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--embed-cache", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=Path("/work/runs-i12/loso_heads"))
    ap.add_argument("--max-fpr", type=float, default=0.03, help="val flag-rate cap per safe set (threshold)")
    ap.add_argument("--design-key", default="design_a")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from fedrai.safety.embedding_cache import CachedEncoder, encoder_tag
    from fedrai.safety.filter_data import filter_examples, source_of
    from fedrai.safety.filters.embedded import Head, SentenceEncoder
    from fedrai.safety.train_head import train_filter

    examples = filter_examples(seed=0)
    enc = CachedEncoder(
        SentenceEncoder("embedded:minilm-l6-v2", 128, dtype="float32", threads=1),
        args.embed_cache,
        encoder_tag("embedded:minilm-l6-v2", 128, "float32"),
    )
    texts = sorted({t for e in examples for t in (e.prompt, e.response) if t})
    t0 = time.time()
    todo = [t for t in texts if enc._key(t) not in enc.cache]  # noqa: SLF001 - same package family
    for s in range(0, len(todo), 500):
        enc.encode(todo[s : s + 500])
        enc.save()
        print(f"encoded {s + 500}/{len(todo)} new texts ({time.time() - t0:.0f} s)", flush=True)
    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result["texts"] = len(texts)
    always = [e for e in examples if source_of(e) in ALWAYS_TEST or e.split == "heldout"]

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    if "previous_head" not in result:
        old = Head.load(None)
        result["previous_head"] = {
            "all_rows": flag_table(
                old,
                enc,
                [e for e in examples if e.split in ("test", "heldout") or source_of(e) in ALWAYS_TEST],
            ),
            "note": "the embedded head shipped in the package when this ran (default_head.npz), float32 embeddings",
        }
        save()
    trainable = [
        e for e in examples if e.split in ("train", "val", "test") and source_of(e) not in ALWAYS_TEST
    ]
    folds = [("in_split", None), *((f"without:{s}", s) for s in LOSO_SOURCES)]
    for name, src in folds:
        if name in result.get(args.design_key, {}):
            continue
        t1 = time.time()
        train_rows = [e for e in trainable if src is None or source_of(e) != src]
        rec = train_filter(
            args.workdir / args.design_key / f"{name.replace(':', '_')}.npz",
            examples=train_rows,
            max_fpr=args.max_fpr,
            encoder=enc,
            encoder_dtype="float32",
            cs=(1.0,),
            log=lambda m: print(m, flush=True),
        )
        head = Head.load(args.workdir / args.design_key / f"{name.replace(':', '_')}.npz")
        test_rows = [e for e in trainable if (e.split == "test" if src is None else source_of(e) == src)]
        result.setdefault(args.design_key, {})[name] = {
            "tested": flag_table(head, enc, test_rows),
            "always_heldout": flag_table(head, enc, always),
            "train_seconds": round(time.time() - t1, 1),
            "train_rows": len(train_rows),
            "train_record_seconds": rec.get("train_seconds"),
        }
        save()
        print(f"{name}: done in {time.time() - t1:.0f} s", flush=True)


if __name__ == "__main__":
    main()
