"""Detoxify (the real library) as a filter: toxicity of the judged text.

Online: ``Detoxify('original')``. Offline (no GitHub/hub here): a checkpoint file and a
Hugging Face config dir, ``Detoxify(checkpoint=ckpt, huggingface_config_path=dir)``; the
checkpoint's ``config.arch.args.model_type`` must point at that dir (PLATFORM.md). fedrai reads
that checkpoint itself with ``torch.load(weights_only=True)`` (detoxify would unpickle anything in
it), so a checkpoint holding more than tensors and plain data is refused, not run.

Detoxify reads one text, so it cannot judge a response *in context*: in that mode (and in
``response`` mode) it scores the response alone; in ``prompt`` mode the prompt. It measures
toxicity, not dangerous compliance, so it misses polite harmful instructions; it is offered
for comparison and for toxic-language screening.
"""

from __future__ import annotations

from typing import Any

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import Judged, SafetyFilter


class DetoxifyFilter(SafetyFilter):
    """unsafe_prob = the highest class score; category = that class (e.g. ``toxicity``)."""

    name = "detoxify"

    def __init__(self, cfg: SafetyConfig, model=None) -> None:
        super().__init__(cfg)
        if model is None:
            from detoxify import Detoxify

            if cfg.detoxify_checkpoint:
                if not cfg.detoxify_config_dir:
                    raise ValueError(
                        "safety.detoxify_checkpoint needs safety.detoxify_config_dir (offline use)"
                    )
                model = load_offline(cfg.detoxify_checkpoint, cfg.detoxify_config_dir)
            else:
                model = Detoxify("original")
        self.model = model

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        texts = prompts if self.cfg.mode == "prompt" else [r or "" for r in responses]
        scores = self.model.predict(list(texts))
        names = list(scores)
        out: list[Judged] = []
        for i in range(len(texts)):
            row = {n: _at(scores[n], i) for n in names}
            best = max(row, key=lambda n: row[n])
            out.append(Judged(row[best], best if row[best] >= self.cfg.threshold else None))
        return out


def _at(value: float | list[float], i: int) -> float:
    # Detoxify squeezes a single text's scores to a float
    return float(value if isinstance(value, (int, float)) else value[i])


# detoxify's own names for some classes, as its loader renames them
_CLASS_NAMES = {"toxic": "toxicity", "identity_hate": "identity_attack", "severe_toxic": "severe_toxicity"}


def load_offline(checkpoint: str, config_dir: str) -> Any:
    """``Detoxify(checkpoint=..., huggingface_config_path=...)`` without unpickling code from the file."""
    import pickle

    import torch
    from detoxify import Detoxify
    from detoxify.detoxify import get_model_and_tokenizer

    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as e:
        raise ValueError(
            f"safety.detoxify_checkpoint {checkpoint}: refused: it holds more than tensors and plain data, "
            f"and loading it could run code stored in the file ({str(e).splitlines()[0]})"
        ) from None
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise ValueError(f"safety.detoxify_checkpoint {checkpoint}: needs 'config' and 'state_dict'")
    classes = [_CLASS_NAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]]
    net, tokenizer = get_model_and_tokenizer(
        **loaded["config"]["arch"]["args"],
        state_dict=loaded["state_dict"],
        huggingface_config_path=config_dir,
    )
    model = Detoxify.__new__(Detoxify)  # what Detoxify.__init__ sets, from the safely loaded parts
    model.model, model.tokenizer, model.class_names, model.device = net.to("cpu"), tokenizer, classes, "cpu"
    return model
