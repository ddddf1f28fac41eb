"""The factored filter: unsafe(prompt, response) = P(prompt asks for harm) x P(response complies).

Why: one linear head over the joint embeddings of the exchange learns alarming *words* (issue 12:
refusals that name the harm and safe questions with alarming words were flagged on data it was not
built from). Factoring the judgement makes two failure modes impossible by construction rather than
by more data: a refusal or safe redirect is never unsafe, whatever words it uses (its comply score
is low), and a benign question is never unsafe, whatever the answer says (its harm score is low).

Two small logistic heads on the frozen MiniLM embeddings (the same encoder as the embedded
backend; two embeddings a row, so the cost is the embedded head's):

* ``prompt_harm`` on the prompt embedding: harmful requests vs benign, safe-but-alarming and
  borderline questions (the contrast data teaches it intent, not vocabulary).
* ``complies`` on the response embedding: an answer that does what was asked vs a refusal or a
  safe non-answer.
* optional ``response_harm`` on the response embedding (the response itself holds harmful content),
  combined as ``max(hp * c, rh * c)``; trained and measured, off in the shipped head (it lowered
  leave-one-source-out recall once thresholded on val: MADE.md).

Modes: ``prompt`` = the prompt head alone; ``response_in_context`` = the product. There is no
``response`` mode (without the prompt there is nothing to factor; use the embedded backend). Each
mode's val-chosen threshold is stored with the head and mapped to probability 0.5 (piecewise
linear, monotone), so ``safety.threshold = 0.5`` means "as trained", as for the other backends.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import Judged, SafetyFilter
from fedrai.safety.filters.embedded import Encoder, LinearHead, SentenceEncoder

FACTORED_HEAD = "factored_head.npz"
FACTORED_MODES = ("prompt", "response_in_context")
PARTS = ("prompt_harm", "complies", "response_harm")


def to_operating_point(raw: np.ndarray, threshold: float) -> np.ndarray:
    """Map raw scores in [0, 1] monotonically so that ``threshold`` becomes 0.5."""
    t = min(max(float(threshold), 1e-6), 1 - 1e-6)
    raw = np.clip(raw, 0.0, 1.0)
    return np.where(raw < t, 0.5 * raw / t, 0.5 + 0.5 * (raw - t) / (1 - t))


@dataclass
class FactoredHead:
    """The heads (``PARTS``; ``response_harm`` optional), raw thresholds per mode, and the record."""

    parts: dict[str, LinearHead]
    thresholds: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def max_seq_length(self) -> int:
        return int(self.meta.get("max_seq_length", 128))

    @property
    def encoder_dtype(self) -> str:
        return str(self.meta.get("encoder_dtype", "float32"))

    def raw_scores(self, mode: str, p: np.ndarray, r: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each head's probability and the combined raw score (``unsafe``) for embeddings p, r."""
        out = {"prompt_harm": self.parts["prompt_harm"].predict_proba(p)}
        if mode == "prompt":
            out["unsafe"] = out["prompt_harm"]
            return out
        if r is None:
            raise ValueError(f"factored head: mode {mode!r} needs response embeddings")
        out["complies"] = self.parts["complies"].predict_proba(r)
        unsafe = out["prompt_harm"] * out["complies"]
        if "response_harm" in self.parts:
            out["response_harm"] = self.parts["response_harm"].predict_proba(r)
            unsafe = np.maximum(unsafe, out["response_harm"] * out["complies"])
        out["unsafe"] = unsafe
        return out

    def predict(self, mode: str, p: np.ndarray, r: np.ndarray | None = None) -> np.ndarray:
        """Unsafe probability at the trained operating point (0.5 = the val-chosen threshold)."""
        if mode not in self.thresholds:
            raise ValueError(
                f"factored head has no {mode!r} mode (has: {', '.join(self.thresholds)}); "
                "use safety.mode = 'response_in_context' or 'prompt', or safety.backend = 'embedded'"
            )
        return to_operating_point(self.raw_scores(mode, p, r)["unsafe"], self.thresholds[mode])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
            "thresholds": np.array(json.dumps(self.thresholds, sort_keys=True)),
        }
        for name, h in self.parts.items():
            arrays[f"{name}.coef"] = h.coef.astype(np.float32)
            arrays[f"{name}.intercept"] = np.array(h.intercept, dtype=np.float64)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> FactoredHead:
        """Load a factored head file; ``None`` loads the one shipped in the package."""
        if path is None:
            ref = resources.files("fedrai.safety.filters").joinpath("heads", FACTORED_HEAD)
            with resources.as_file(ref) as p:
                return cls._read(p)
        return cls._read(Path(path))

    @classmethod
    def _read(cls, path: Path) -> FactoredHead:
        if not path.is_file():
            raise FileNotFoundError(
                f"factored safety head {path} not found; train one with "
                "`fedrai safety train-filter --design factored`"
            )
        with np.load(path, allow_pickle=False) as z:
            if "prompt_harm.coef" not in z.files:
                raise ValueError(
                    f"{path} is not a factored head (no prompt_harm head); an embedded head file needs "
                    "safety.backend = 'embedded'"
                )
            parts = {
                name: LinearHead(
                    "p" if name == "prompt_harm" else "r",
                    z[f"{name}.coef"].astype(np.float32),
                    float(z[f"{name}.intercept"]),
                )
                for name in PARTS
                if f"{name}.coef" in z.files
            }
            return cls(parts, json.loads(str(z["thresholds"])), json.loads(str(z["meta"])))


class FactoredFilter(SafetyFilter):
    """MiniLM + prompt-harm and complies heads. No categories: safe/unsafe only."""

    name = "factored"

    def __init__(
        self, cfg: SafetyConfig, encoder: Encoder | None = None, head: FactoredHead | None = None
    ) -> None:
        super().__init__(cfg)
        self.head = head or FactoredHead.load(cfg.head_path)
        if cfg.mode not in self.head.thresholds:
            raise ValueError(
                f"safety.mode = {cfg.mode!r}: the factored filter judges 'prompt' or 'response_in_context' "
                "(a response alone cannot be factored); use safety.backend = 'embedded' for 'response'"
            )
        dtype = self.head.encoder_dtype if cfg.encoder_dtype == "head" else cfg.encoder_dtype
        if dtype != self.head.encoder_dtype:
            warnings.warn(
                f"factored safety head was trained on {self.head.encoder_dtype} embeddings but the encoder "
                f"runs in {dtype} (safety.encoder_dtype): its thresholds were not validated for that",
                stacklevel=2,
            )
        self.encoder: Encoder = encoder or SentenceEncoder(
            cfg.encoder,
            self.head.max_seq_length,
            batch_size=min(cfg.batch_size, 32),
            dtype=dtype,
            threads=cfg.encoder_threads,
        )

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        mode = self.cfg.mode
        texts = list(prompts) + ([r or "" for r in responses] if mode != "prompt" else [])
        vecs = self.encoder.encode(texts)
        n = len(prompts)
        p, r = vecs[:n], (vecs[n:] if mode != "prompt" else None)
        return [Judged(float(x)) for x in self.head.predict(mode, p, r)]
