"""The GPU path as a federation: 2-4 QLoRA clients sharing one GPU, through the real simulation.

    python -m benchmarks.gpu_qlora_federated [--clients 4] [--rounds 2] [--steps 5] [--layers 32]
    python -m benchmarks.gpu_qlora_federated --small        # CPU: tiny model shape, no bitsandbytes

On a CUDA machine: a randomly initialised Llama with Llama-3.1-8B's shape (hidden 4096, 32 layers,
GQA 32/8, MLP 14336, vocabulary 128256; real weights cannot reach the machine) is written once in
bf16, then ``fedrai``'s own simulation (SuperLink + Ray) runs it with ``--clients`` ClientApp actors
that share the GPU through fractional resources (``federation.gpus_per_client = 1/clients``), each
loading the base in 4-bit nf4 (QLoRA, when bitsandbytes is installed) with LoRA r=16 on q/k/v/o.
The ServerApp (in the driver process) holds one more copy to carry the global adapter.

Writes per client and round the peak GPU memory its process allocated (``client.peak_gpu_mb`` in
the run's ``clients.jsonl``) and its local step time, the round time, and the device's peak memory
in use (all processes, sampled) to ``benchmarks/results/gpu_qlora_federated.json``. Goal: <= 10 GB
per 8B QLoRA client. Without a GPU, ``--small`` runs the same code path with a tiny model in fp32,
and the JSON says that no GPU was used: its figures say nothing about a GPU.

(``benchmarks/gpu_qlora.py`` is the single-process check of the same code path, already run on an
H200; its results stay in ``gpu_qlora.json``.)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from fedrai.config import ExperimentConfig
from fedrai.run_dir import RunDir
from fedrai.runtime import run_simulation
from tests.tiny import build_tiny_llama

RESULTS = Path(__file__).parent / "results"
LLAMA31_8B = {
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
}
TEXT = "Mix flour, water, yeast and salt, knead the dough, let it rise for an hour, then bake it. " * 12
NO_GPU_NOTE = (
    "No GPU was available: this ran the CPU path with a tiny model shape (fp32, no 4-bit). "
    "It shows the benchmark works end to end; its memory and time figures say nothing about a GPU."
)


def build_model(out: Path, small: bool, layers: int) -> dict[str, Any]:
    """The tokenizer from tests/tiny.py; weights random in Llama-3.1-8B's shape (tiny with ``small``)."""
    build_tiny_llama(out, hidden=64)
    if small:
        return {"shape": "tiny (tests/tiny.py, hidden 64, 2 layers)"}
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = {**LLAMA31_8B, "num_hidden_layers": layers}
    config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(str(out))
    del model
    torch.cuda.empty_cache()
    return {"shape": "Llama-3.1-8B" + ("" if layers == 32 else f" with {layers} layers"), **shape,
            "parameters": params, "build_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


class GpuSampler:
    """Peak memory in use on GPU 0 by all processes (``nvidia-smi``), sampled every second."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                    capture_output=True, text=True, timeout=10,
                )  # fmt: skip
                self.peak_mb = max(self.peak_mb, float(out.stdout.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return


def experiment(
    work: Path, model_dir: Path, args: argparse.Namespace, gpu: bool, quant: str
) -> ExperimentConfig:
    data = work / "pairs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": f"How do I bake bread, step {i}?", "response": TEXT}) + "\n"
            for i in range(200)
        )
    )
    return ExperimentConfig.from_dict(
        {
            "name": "gpu-qlora-federated",
            "model": {
                "name_or_path": str(model_dir),
                "max_seq_length": args.seq,
                "dtype": "bfloat16" if gpu else "float32",
                "quantization": quant,
            },  # fmt: skip
            "lora": {
                "r": 16,
                "alpha": 32,
                "dropout": 0.0,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            },
            "data": {"source": str(data), "heldout_rows": 0},
            "federation": {
                "num_clients": args.clients,
                "num_rounds": args.rounds,
                "cpus_per_client": 1,
                "gpus_per_client": round(1.0 / args.clients, 4) if gpu else 0.0,
                "wire_dtype": "float16",
            },
            "strategy": {"min_train_clients": args.clients, "min_available_clients": args.clients},
            "train": {"local_steps": args.steps, "batch_size": args.batch},
            "eval": {"enabled": False},
            "output": {"dir": str(work / "run")},
        }
    )


def summarize(run: RunDir) -> dict[str, Any]:
    clients = run.read_clients()
    rounds = [r for r in run.read_metrics() if r["round"] > 0]
    per_client = [
        {
            "round": c["round"],
            "partition": c.get("partition-id"),
            "peak_gpu_mb": round(c.get("client.peak_gpu_mb", 0.0), 1),
            "peak_rss_mb": round(c.get("client.peak_rss_mb", 0.0), 1),
            "step_seconds": round(c["train.seconds"] / max(1.0, c["train.steps"]), 3),
        }
        for c in clients
    ]
    return {
        "clients": per_client,
        "max_client_peak_gpu_gb": round(max((c["peak_gpu_mb"] for c in per_client), default=0.0) / 1024, 2),
        "round_seconds": [round(r["seconds"], 1) for r in rounds],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="Tiny model shape (the CPU path, for tests).")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument(
        "--layers", type=int, default=32, help="Decoder layers of the 8B shape (fewer: faster)."
    )
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu_qlora_federated.json")
    args = parser.parse_args(argv)
    gpu = torch.cuda.is_available()
    if not gpu and not args.small:
        parser.error("no CUDA device here: run with --small (the CPU path with a tiny model)")
    if args.small:
        args.seq = min(args.seq, 64)
    has_bnb = importlib.util.find_spec("bitsandbytes") is not None
    quant = "4bit" if gpu and has_bnb and not args.small else "none"
    work = args.work or Path(tempfile.mkdtemp(prefix="fedrai-gpu-fed-"))
    work.mkdir(parents=True, exist_ok=True)
    model = build_model(work / "model", args.small, args.layers)
    cfg = experiment(work, work / "model", args, gpu, quant)
    t0 = time.perf_counter()
    sampler = GpuSampler() if gpu else None
    if sampler:
        sampler.__enter__()
    try:
        run_simulation(cfg, work / "run", timeout_s=3600)
    finally:
        if sampler:
            sampler.__exit__()
    result = {
        "benchmark": "gpu_qlora_federated",
        "gpu_available": gpu,
        "device": torch.cuda.get_device_name(0)
        if gpu
        else f"CPU ({platform.processor() or platform.machine()})",
        "note": None if gpu else NO_GPU_NOTE,
        "model": model,
        "setting": {
            "clients": args.clients,
            "gpus_per_client": cfg.federation.gpus_per_client,
            "quantization": quant,
            "bitsandbytes_installed": has_bnb,
            "lora_r": 16,
            "targets": "q,k,v,o",
            "rounds": args.rounds,
            "local_steps": args.steps,
            "batch": args.batch,
            "seq": args.seq,
        },  # fmt: skip
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "device_peak_used_gb_all_processes": round(sampler.peak_mb / 1024, 2) if sampler else None,
        "goal_gb_per_client": 10,
        **summarize(RunDir(work / "run")),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not gpu:
        print(f"NOTE: {NO_GPU_NOTE}")
    print(json.dumps({k: v for k, v in result.items() if k != "clients"}, indent=2))
    return result


if __name__ == "__main__":
    main()
