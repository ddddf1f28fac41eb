"""The base causal LM and its LoRA adapter.

Only the adapter is trained and only the adapter travels, so everything here is about loading
a frozen base once per process and moving adapter tensors in and out of it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fedrai.assets import resolve
from fedrai.config import LoraSettings, ModelConfig

if TYPE_CHECKING:  # pragma: no cover
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def device_for(cfg: ModelConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def cpu_has_fast_bf16() -> bool:
    """The CPU runs bf16 matmuls natively (AVX512-BF16 or AMX). Without them bf16 halves the
    weights' memory but is several times slower than fp32 (11x for a matmul on this AVX2 EPYC: benchmarks/memory.py --bf16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line.split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_tokenizer(cfg: ModelConfig) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        resolve(cfg.name_or_path), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(
            f"model.name_or_path = {cfg.name_or_path!r}: the tokenizer has no chat template; "
            "fedrai formats every example as a chat, use an instruct/chat model"
        )
    return tokenizer


def load_base_model(cfg: ModelConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the frozen base model (optionally 4/8-bit through bitsandbytes) and its tokenizer."""
    from transformers import AutoModelForCausalLM

    path = resolve(cfg.name_or_path)
    if path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().is_dir():
        raise ValueError(f"model.name_or_path = {cfg.name_or_path!r}: no such model directory")
    kwargs: dict = {
        "dtype": _DTYPES[cfg.dtype],
        "revision": cfg.revision,
        "trust_remote_code": cfg.trust_remote_code,
    }
    device = device_for(cfg)
    if cfg.quantization != "none":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=cfg.quantization == "4bit",
            load_in_8bit=cfg.quantization == "8bit",
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=_DTYPES[cfg.dtype] if cfg.dtype != "float32" else torch.bfloat16,
        )
        kwargs["device_map"] = {"": 0} if device.type == "cuda" else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        raise ValueError(f"model.name_or_path = {cfg.name_or_path!r}: cannot load ({err})") from None
    if cfg.quantization == "none":
        model.to(device)
    if device.type == "cpu" and cfg.dtype == "bfloat16" and not cpu_has_fast_bf16():
        log.warning(
            "model.dtype = bfloat16 on a CPU without AVX512-BF16/AMX: half the weight memory, but "
            "several times slower than float32 here"
        )
    # No prepare_model_for_kbit_training: its fp32 upcast of norms, embeddings and lm_head cost
    # more memory than 4-bit saved on a 1B model (measured, benchmarks/results/gpu_qlora.json).
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return model, load_tokenizer(cfg)


def add_lora(model: PreTrainedModel, cfg: LoraSettings, seed: int) -> PeftModel:
    """Wrap the base in a LoRA adapter whose initial weights depend only on ``seed``."""
    from peft import LoraConfig, get_peft_model

    target: str | list[str] = "all-linear" if cfg.target_modules == ["all-linear"] else cfg.target_modules
    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=target,
        task_type="CAUSAL_LM",
        bias="none",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(model, lora)
    return peft_model.eval()  # training switches to train mode and back


def load_model(
    model_cfg: ModelConfig, lora_cfg: LoraSettings, seed: int
) -> tuple[PeftModel, PreTrainedTokenizerBase]:
    base, tokenizer = load_base_model(model_cfg)
    return add_lora(base, lora_cfg, seed), tokenizer


def get_adapter_state(model: PeftModel) -> OrderedDict[str, torch.Tensor]:
    """A copy of the trainable adapter tensors, on CPU, in a stable order."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model)
    return OrderedDict((k, v.detach().to("cpu", copy=True)) for k, v in sorted(state.items()))


def set_adapter_state(model: PeftModel, state: dict[str, torch.Tensor]) -> None:
    """Load adapter tensors; every expected key must be present with its shape."""
    from peft import set_peft_model_state_dict

    expected = get_adapter_state(model)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(
            f"adapter keys do not match the model: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ValueError(
                f"adapter tensor {k}: shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}"
            )
    ref = next(iter(expected.values()))
    device = next(p.device for p in model.parameters() if p.requires_grad)
    set_peft_model_state_dict(model, {k: v.to(device=device, dtype=ref.dtype) for k, v in state.items()})


def load_adapter_dir(model: PeftModel, directory: str | Path) -> None:
    """Load an adapter this model saved with ``save_pretrained`` back into it (peft reads the file)."""
    from peft.utils import load_peft_weights

    set_adapter_state(model, load_peft_weights(str(directory), device="cpu"))


def count_parameters(model: PeftModel) -> tuple[int, int]:
    """(trainable adapter parameters, all parameters of base + adapter)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def trainable_by_state_key(model: PeftModel) -> dict[str, torch.nn.Parameter]:
    """Trainable parameters keyed like the adapter state dict (peft drops the adapter name)."""
    suffix = f".{model.active_adapter}"
    return {name.replace(suffix, ""): p for name, p in model.named_parameters() if p.requires_grad}
