"""The cross-encoder filter: MiniLM fine-tuned (LoRA + a classification head) over the exchange.

Why: frozen sentence embeddings of the prompt and the response, compared by a linear head, mostly
detect alarming words (issue 12: 45% of refusals and 63% of safe-but-alarming prompts flagged on
independent data). A cross-encoder reads the prompt and the response together, token by token, so
"I can't help you crack password hashes" and a compliant answer on the same topic look different.

One model serves all three modes through its input text:

* ``prompt``: ``"user: <prompt>"``
* ``response``: ``"assistant: <response>"``
* ``response_in_context``: the pair ``("user: <prompt>", "assistant: <response>")``

The shipped artifact (``heads/cross_encoder/``) is the LoRA weights plus the classifier head in
safetensors (no pickle) and a ``meta.json`` (base encoder, LoRA config, max length, the val-chosen
threshold per mode, folded in so that 0.5 is the operating point). The base MiniLM comes from the
offline asset ``embedded:minilm-l6-v2``.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import Judged, SafetyFilter

DEFAULT_DIR = "cross_encoder"
WEIGHTS = "adapter.safetensors"
META = "meta.json"
LORA_TARGETS = ["query", "key", "value", "dense"]


def format_inputs(
    mode: str, prompts: list[str], responses: list[str | None]
) -> tuple[list[str], list[str] | None]:
    """The (first, second) texts the model reads for ``mode`` (second None: single segment)."""
    if mode == "prompt":
        return [f"user: {p}" for p in prompts], None
    if mode == "response":
        return [f"assistant: {r or ''}" for r in responses], None
    return [f"user: {p}" for p in prompts], [f"assistant: {r or ''}" for r in responses]


def build_model(base: str, lora_r: int = 8, lora_alpha: int = 16, seed: int = 0) -> tuple[Any, Any]:
    """(tokenizer, peft model): ``base`` (dir or asset ref) with one logit and LoRA adapters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from fedrai.assets import resolve

    path = resolve(base) if ":" in base else base
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    cfg = LoraConfig(
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=0.05,
        target_modules=LORA_TARGETS,
        modules_to_save=["classifier"],
        task_type="SEQ_CLS",
    )
    return tok, get_peft_model(model, cfg)


class CrossEncoder:
    """A loaded cross-encoder: tokenizer + model + meta (thresholds per mode)."""

    def __init__(self, tok: Any, model: Any, meta: dict[str, Any]) -> None:
        self.tok, self.model, self.meta = tok, model, meta

    @property
    def max_length(self) -> int:
        return int(self.meta.get("max_length", 128))

    def logits(
        self, mode: str, prompts: list[str], responses: list[str | None], batch_size: int = 32
    ) -> list[float]:
        """Raw logits (before the threshold shift), batched, sorted by length to pad little."""
        import torch

        first, second = format_inputs(mode, prompts, responses)
        order = sorted(range(len(first)), key=lambda i: len(first[i]) + len(second[i] if second else ""))
        out = [0.0] * len(first)
        self.model.eval()
        dtype = torch.bfloat16 if self.meta.get("dtype", "bfloat16") == "bfloat16" else torch.float32
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype == torch.bfloat16):
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                enc = self.tok(
                    [first[i] for i in idx],
                    [second[i] for i in idx] if second else None,
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                z = self.model(**enc).logits[:, 0].float().tolist()
                for i, v in zip(idx, z, strict=True):
                    out[i] = v
        return out

    def predict_proba(
        self, mode: str, prompts: list[str], responses: list[str | None], batch_size: int = 32
    ) -> list[float]:
        """Unsafe probabilities with the mode's val threshold at 0.5."""
        shift = _logit(float(self.meta.get("thresholds", {}).get(mode, 0.5)))
        return [_sigmoid(z - shift) for z in self.logits(mode, prompts, responses, batch_size)]

    def save(self, out_dir: str | Path) -> Path:
        """LoRA + head weights (safetensors) and meta.json into ``out_dir``."""
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {  # float16 on disk (half the size); the filter computes in float32
            k: v.detach().to("cpu").contiguous().half()
            for k, v in get_peft_model_state_dict(self.model).items()
        }
        save_file(state, str(out / WEIGHTS))
        (out / META).write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | Path | None = None, base: str | None = None) -> CrossEncoder:
        """Load a saved cross-encoder (``None``: the shipped one); ``base`` overrides the encoder."""
        if path is None:
            ref = resources.files("fedrai.safety.filters").joinpath("heads", DEFAULT_DIR)
            with resources.as_file(ref) as p:
                return cls._read(Path(p), base)
        return cls._read(Path(path), base)

    @classmethod
    def _read(cls, path: Path, base: str | None) -> CrossEncoder:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if not (path / WEIGHTS).is_file() or not (path / META).is_file():
            raise FileNotFoundError(
                f"cross-encoder {path} not found (needs {WEIGHTS} and {META}); "
                "train one with `fedrai safety train-filter --design cross_encoder`"
            )
        meta = json.loads((path / META).read_text(encoding="utf-8"))
        tok, model = build_model(base or meta["base"], int(meta["lora_r"]), int(meta["lora_alpha"]))
        set_peft_model_state_dict(model, {k: v.float() for k, v in load_file(str(path / WEIGHTS)).items()})
        model.eval()
        del torch
        return cls(tok, model, meta)


class CrossEncoderFilter(SafetyFilter):
    """Fine-tuned MiniLM cross-encoder (the default). No categories: safe/unsafe only."""

    name = "cross_encoder"

    def __init__(self, cfg: SafetyConfig, model: CrossEncoder | None = None) -> None:
        super().__init__(cfg)
        self.ce = model or CrossEncoder.load(cfg.head_path)
        self.threads = cfg.encoder_threads

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        import torch

        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)  # restored: the process's other work keeps its own
        try:
            probs = self.ce.predict_proba(
                self.cfg.mode, prompts, responses, batch_size=min(self.cfg.batch_size, 32)
            )
        finally:
            if self.threads:
                torch.set_num_threads(previous)
        return [Judged(p) for p in probs]


def _logit(x: float) -> float:
    x = min(max(x, 1e-6), 1 - 1e-6)
    return math.log(x / (1 - x))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
