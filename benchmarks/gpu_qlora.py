"""The GPU path: 4-bit QLoRA vs bf16 LoRA through fedrai's own model, training and generation code.

    python -m benchmarks.gpu_qlora [--layers 16] [--out benchmarks/results/gpu_qlora.json]

Run once on a CUDA machine (the device check). Real 8B weights cannot reach that machine, so the
model is a randomly initialised Llama with Llama-3.2-1B's shape (hidden 2048, 16 layers, GQA 32/8,
MLP 8192): the code path (bitsandbytes nf4 loading, k-bit preparation, LoRA on the quantised
base, the training loop, adapter extraction, peft save/reload, batched generation) is real, the
losses are not meaningful. Writes timings and peak GPU memory to JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from fedrai.config import LoraSettings, ModelConfig
from fedrai.evaluation.generation import generate
from fedrai.model import count_parameters, get_adapter_state, load_model, set_adapter_state
from fedrai.training import train_lora
from tests.tiny import build_tiny_llama

TEXT = "Mix flour, water, yeast and salt, knead the dough, let it rise for an hour, then bake it. " * 12


def build_model(out: Path, layers: int, small: bool) -> Path:
    """Tokenizer from tests/tiny.py, weights random in the shape of Llama-3.2-1B (or tiny with --small)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    build_tiny_llama(out, hidden=128)  # the tokenizer (and a small model, overwritten below)
    if small:
        return out
    config = LlamaConfig(
        vocab_size=32768,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(out))
    del model
    torch.cuda.empty_cache()
    return out


def rows(n: int) -> list[dict]:
    return [
        {
            "id": f"r{i}",
            "messages": [{"role": "user", "content": f"How do I bake bread, step {i}?"}],
            "response": TEXT,
            "origin": "benign",
            "group": "g",
        }
        for i in range(n)
    ]


def one_mode(model_dir: Path, quantization: str, steps: int, batch: int) -> dict:
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    cfg = ModelConfig(
        name_or_path=str(model_dir), dtype="bfloat16", quantization=quantization, max_seq_length=256
    )
    t = time.perf_counter()
    model, tok = load_model(cfg, LoraSettings(r=16, alpha=32), seed=0)
    load_s = time.perf_counter() - t
    trainable, total = count_parameters(model)
    mem_loaded = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    result = train_lora(
        model,
        tok,
        rows(64),
        steps=steps,
        batch_size=batch,
        grad_accum=1,
        learning_rate=2e-4,
        max_seq_length=256,
        seed=0,
    )
    if cuda:
        torch.cuda.synchronize()
    mem_train = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    state = get_adapter_state(model)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        reloaded, _ = load_model(cfg, LoraSettings(r=16, alpha=32), seed=99)
        from safetensors.torch import load_file

        set_adapter_state(reloaded, {k: v for k, v in load_file(f"{tmp}/adapter_model.safetensors").items()})
        ids = torch.tensor([[1, 5, 9, 12, 40]], device=next(model.parameters()).device)
        with torch.no_grad():
            same = torch.allclose(reloaded(ids).logits.float(), model(ids).logits.float(), atol=1e-2)
        del reloaded
    prompts = [[{"role": "user", "content": f"Write a poem about the sea, verse {i}"}] for i in range(32)]
    t = time.perf_counter()
    outs = generate(model, tok, prompts, max_new_tokens=32, batch_size=32)
    gen_s = time.perf_counter() - t
    out = {
        "quantization": quantization,
        "load_seconds": load_s,
        "adapter_parameters": trainable,
        "all_parameters": total,
        "adapter_dtype": str(next(iter(state.values())).dtype),
        "train_seconds_per_step": result.seconds / result.steps,
        "loss_first": result.loss_first,
        "loss_last": result.loss_last,
        "peak_gpu_gib_after_load": mem_loaded,
        "peak_gpu_gib_training": mem_train,
        "saved_adapter_reloads_same_logits": bool(same),
        "generate_prompts_per_second": len(outs) / gen_s,
        "base_weight_dtype": str(
            next(p for n, p in model.named_parameters() if "q_proj.base_layer" in n).dtype
        ),
    }
    del model
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--small", action="store_true", help="tiny model, for a CPU dry run of the script")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gpu_qlora.json")
    args = parser.parse_args()
    import bitsandbytes
    import peft
    import transformers

    report: dict = {
        "benchmark": "gpu_qlora",
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "bitsandbytes": bitsandbytes.__version__,
            "python": platform.python_version(),
        },
        "model": "random Llama, Llama-3.2-1B shape" if not args.small else "tiny random Llama",
        "setting": {"lora_r": 16, "targets": "q,k,v,o", "batch": args.batch, "seq": 256, "steps": args.steps},
        "modes": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_model(Path(tmp) / "model", args.layers, args.small)
        for quantization in ("none", "4bit"):
            report["modes"].append(one_mode(model_dir, quantization, args.steps, args.batch))
            print(json.dumps(report["modes"][-1], indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
