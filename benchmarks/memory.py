"""Where the resident memory of a client goes: one process doing a demo client's work, step by step.

    python -m benchmarks.memory [--preset demo] [--steps 6] [--release | --no-release] [--out ...]

Mimics the Ray ClientApp actor of the demo (SmolLM2-135M-Instruct fp32, LoRA r=8, the embedded
safety filter): the imports a Ray actor has (ray, flwr, torch, transformers, peft,
sentence-transformers), the base model with LoRA, the client's partition, the guard pass (filter
encoder + head), then local training (AdamW, activations of batch 4 x 256 tokens). After each step
it records the resident set (RSS) and the peak so far (``ru_maxrss``). With ``--release`` (what the
client does now) the filter is dropped after the guard pass and glibc is asked to return freed
heap to the OS (``malloc_trim``); ``--no-release`` keeps it like the client did before.

Run the two modes in fresh processes (``python -m benchmarks.memory --both``): imports and the
allocator's state cannot be undone within one process. Writes ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
TARGETS = {"client_actor_peak_mb": 2048, "demo_total_mb": 5120}


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def rss_parts_mb() -> dict[str, float]:
    """Anonymous (private heap, tensors we own) vs file-backed (mmap'd weights, libraries) RSS."""
    out = {}
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                key, value = line.split(":")
                out[key.strip().lower().replace("rss", "rss_") + "_mb"] = round(
                    int(value.split()[0]) / 1024, 1
                )
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Steps:
    """RSS after each named step, with the increase it caused and the peak so far."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.last = rss_mb()
        self.rows.append({"step": "python + psutil", "rss_mb": round(self.last, 1), "delta_mb": 0.0})

    def mark(self, step: str, **extra: object) -> None:
        now = rss_mb()
        self.rows.append(
            {"step": step, "rss_mb": round(now, 1), "delta_mb": round(now - self.last, 1),
             "peak_mb": round(peak_mb(), 1), **rss_parts_mb(), **extra}
        )  # fmt: skip
        print(f"{step:44s} rss {now:8.1f} MB  (+{now - self.last:7.1f})  peak {peak_mb():8.1f}", flush=True)
        self.last = now


def one_process(
    preset: str, steps: int, release: bool, partition: int, checkpointing: bool | None = None
) -> dict:
    """The client's work in this process, measured step by step (see the module docstring)."""
    s = Steps()
    import torch

    torch.set_num_threads(1)
    s.mark("import torch")
    import transformers  # noqa: F401

    s.mark("import transformers")
    import peft  # noqa: F401

    s.mark("import peft")
    import flwr.clientapp  # noqa: F401

    s.mark("import flwr (ClientApp)")
    import ray  # noqa: F401

    s.mark("import ray")
    from fedrai.client_app import app  # noqa: F401  - what the actor imports for the ClientApp

    s.mark("import fedrai.client_app")
    import fedrai.config
    from fedrai.clients.pipeline import guard_rows, load_client_rows, release_memory
    from fedrai.clients.worker import get_worker
    from fedrai.config import ExperimentConfig
    from fedrai.training import train_lora

    cfg = ExperimentConfig.from_toml(Path(fedrai.config.__file__).parent / "presets" / f"{preset}.toml")
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"local_steps": steps})})
    if checkpointing is not None:
        cfg = cfg.model_copy(
            update={"model": cfg.model.model_copy(update={"gradient_checkpointing": checkpointing})}
        )
    worker = get_worker(cfg)
    s.mark("base model + LoRA (fp32)", dtype=cfg.model.dtype)
    rows = load_client_rows(cfg, partition, {})
    s.mark("client partition (rows)", rows=len(rows))
    state_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"fedrai-memory-{os.getpid()}"
    t0 = time.perf_counter()
    kept, counts = guard_rows(cfg, rows, state_dir, worker.model, worker.tokenizer, seed=0, release=release)
    s.mark("guard pass (filter encoder + head)", seconds=round(time.perf_counter() - t0, 1),
           kept=len(kept), released=release)  # fmt: skip
    t0 = time.perf_counter()
    result = train_lora(
        worker.model,
        worker.tokenizer,
        kept,
        steps=cfg.train.local_steps,
        batch_size=cfg.train.batch_size,
        grad_accum=cfg.train.grad_accum,
        learning_rate=cfg.train.learning_rate,
        max_seq_length=cfg.model.max_seq_length,
        seed=0,
        optimizer=cfg.train.optimizer,
        max_grad_norm=cfg.train.max_grad_norm,
        weight_decay=cfg.train.weight_decay,
    )
    s.mark("local training (AdamW + activations)", seconds=round(time.perf_counter() - t0, 1),
           steps=result.steps, batch=cfg.train.batch_size, seq=cfg.model.max_seq_length)  # fmt: skip
    if release:
        release_memory()
        s.mark("after release (gc + malloc_trim)")
    return {
        "release": release,
        "gradient_checkpointing": cfg.model.gradient_checkpointing,
        "steps": s.rows,
        "peak_mb": round(peak_mb(), 1),
        "final_rss_mb": round(rss_mb(), 1),
        "modules": {m: m in sys.modules for m in ("sentence_transformers", "sklearn", "datasets", "pandas")},
    }


def bf16_speed(repeats: int = 20) -> dict:
    """fp32 vs bf16 time of a SmolLM2-sized MLP matmul (1024 tokens x 576 -> 1536) on 1 thread."""
    import torch

    torch.set_num_threads(1)
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(1024, 576, dtype=dtype)
        w = torch.randn(1536, 576, dtype=dtype)
        torch.nn.functional.linear(x, w)  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.linear(x, w)
        out[str(dtype).removeprefix("torch.")] = round((time.perf_counter() - t0) / repeats * 1000, 2)
    return {"ms_per_matmul": out, "bf16_slowdown": round(out["bfloat16"] / out["float32"], 1)}


def cpu_flags() -> dict:
    flags = ""
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as fh:
        flags = next(line for line in fh if line.startswith("flags"))
    return {f: f in flags.split() for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")}


def child(args: argparse.Namespace, flags: list[str]) -> dict:
    """One mode in a fresh process (imports and the allocator's state cannot be undone)."""
    tmp = RESULTS / f".memory-{os.getpid()}-{'-'.join(flags)}.json"
    cmd = [sys.executable, "-m", "benchmarks.memory", *flags, "--preset", args.preset,
           "--steps", str(args.steps), "--json", str(tmp)]  # fmt: skip
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        return json.loads(tmp.read_text())
    finally:
        tmp.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--release", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
        help="Recompute activations in backward (default: the preset's model.gradient_checkpointing).",
    )  # fmt: skip
    parser.add_argument(
        "--both", action="store_true", help="Run the before and after modes in fresh processes."
    )
    parser.add_argument("--bf16", action="store_true", help="Time fp32 vs bf16 matmuls; merge into --out.")
    parser.add_argument(
        "--label", default=None, help="Run this one mode in a fresh process; merge it as LABEL."
    )
    parser.add_argument("--json", type=Path, default=None, help="(internal) write one mode's result here.")
    parser.add_argument("--out", type=Path, default=RESULTS / "memory.json")
    args = parser.parse_args()
    if args.bf16:
        doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
        doc["bf16_on_this_cpu"] = {"cpu_flags": cpu_flags(), **bf16_speed()}
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        print(doc["bf16_on_this_cpu"])
        return
    if args.label:
        doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
        flags = ["--release" if args.release else "--no-release"]
        if args.gradient_checkpointing is not None:
            flags.append(
                "--gradient-checkpointing" if args.gradient_checkpointing else "--no-gradient-checkpointing"
            )
        doc.setdefault("single_process", {})[args.label] = child(args, flags)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        return
    if not args.both:
        result = one_process(
            args.preset, args.steps, args.release, args.partition, args.gradient_checkpointing
        )
        if args.json:
            args.json.write_text(json.dumps(result))
        else:
            print(json.dumps(result, indent=2))
        return
    modes = {}
    modes["before"] = child(args, ["--no-release", "--no-gradient-checkpointing"])
    modes["after"] = child(args, ["--release", "--gradient-checkpointing"])
    doc = {
        "benchmark": "memory",
        "what": "one process doing a demo client's work (imports, base model, partition, guard, training)",
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_flags": cpu_flags(),
            "python": platform.python_version(),
            "total_memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        },  # fmt: skip
        "targets": TARGETS,
        "single_process": modes,
    }
    if args.out.exists():  # keep measurements other tools added (the real demo's actors)
        old = json.loads(args.out.read_text())
        for key, value in old.items():
            doc.setdefault(key, value)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: {"peak_mb": v["peak_mb"]} for k, v in modes.items()}, indent=2))


if __name__ == "__main__":
    main()
