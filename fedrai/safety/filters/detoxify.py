"""Detoxify (the real library) as a filter: toxicity of the judged text.

Online: ``Detoxify('original')``. Offline (no GitHub/hub here): a checkpoint file and a
Hugging Face config dir, ``Detoxify(checkpoint=ckpt, huggingface_config_path=dir)``; the
checkpoint's ``config.arch.args.model_type`` must point at that dir (PLATFORM.md).

Detoxify reads one text, so it cannot judge a response *in context*: in that mode (and in
``response`` mode) it scores the response alone; in ``prompt`` mode the prompt. It measures
toxicity, not dangerous compliance, so it misses polite harmful instructions; it is offered
for comparison and for toxic-language screening.
"""

from __future__ import annotations

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
                model = Detoxify(
                    checkpoint=cfg.detoxify_checkpoint, huggingface_config_path=cfg.detoxify_config_dir
                )
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
