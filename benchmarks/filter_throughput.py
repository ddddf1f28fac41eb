"""Rows per second of the filter designs on this CPU (1 torch thread), in the client's call path.

    nice -n 10 python benchmarks/filter_throughput.py --out /work/runs-i12/throughput.json \
        [--cross-encoder DIR] [--rows 256]

Rows: the first ``--rows`` test-split pairs of the filter data (response_in_context) and their
prompts (prompt mode). Each variant is timed twice after a warm-up batch; the load average is
recorded (this machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cross-encoder", default=None)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument(
        "--variants",
        nargs="*",
        default=["factored", "embedded/float32", "embedded/bfloat16", "cross_encoder"],
    )
    args = ap.parse_args()

    from fedrai.config import SafetyConfig
    from fedrai.safety.filter_data import filter_examples
    from fedrai.safety.filters import build_filter

    ex = [e for e in filter_examples(seed=0) if e.split == "test" and e.response][: args.rows]
    prompts, responses = [e.prompt for e in ex], [e.response for e in ex]
    flags = sorted(
        {
            f
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            for f in line.split()
            if f in ("avx512f", "avx512_bf16", "amx_bf16", "avx2")
        }
    )
    out: dict = {"rows": len(ex), "cpu_flags": flags, "threads": 1, "variants": {}}
    for variant in args.variants:
        backend, _, dtype = variant.partition("/")
        for mode in ("response_in_context", "prompt"):
            fields = {"backend": backend, "mode": mode, "encoder_threads": 1}
            if dtype:
                fields["encoder_dtype"] = dtype
            if backend == "cross_encoder" and args.cross_encoder:
                fields["head_path"] = args.cross_encoder
            f = build_filter(SafetyConfig(**fields))
            f.score(prompts[:16], responses[:16])  # warm-up
            runs = []
            for _ in range(2):
                t = time.time()
                f.score(prompts, responses)
                runs.append(round(len(ex) / (time.time() - t), 1))
            key = f"{variant}/{mode}"
            while key in out["variants"]:  # a variant named twice (interleaved repeats) keeps both
                key += "+"
            out["variants"][key] = {
                "rows_per_s": runs,
                "loadavg_1min": round(os.getloadavg()[0], 2),
            }
            print(variant, mode, runs, flush=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
