"""The embedded (offline, CPU) filter: MiniLM sentence embeddings + a small trained head.

A head is a logistic regression per mode over features built from the prompt embedding ``p``
and the response embedding ``r``. Judging a response *in context* needs both: a refusal and a
compliant answer to the same harmful request differ in ``r``, while a benign answer and a harmful
one differ in how ``r`` relates to ``p`` (hence ``p*r``). The head file is a small ``.npz``
shipped in the package; its bias is shifted so that the operating point chosen on a validation
split sits at probability 0.5, so ``safety.threshold = 0.5`` means "as trained" for every mode.

The shipped in-context head is *stacked* (``STACKED``): besides ``[p, r, p*r, |p-r|]`` it has
``hp``, a linear "harmful request" score of ``p``, ``cr``, a linear "complied, not refused" score
of ``r``, their product, so that a logistic regression can express "harmful request AND
complied", which a linear model on the embeddings alone cannot. The two projections are stored
with the head (``LinearHead.proj``). ``features`` also builds other products (``hp*r``: the
response gated by how harmful the request is); tried, not shipped (MADE.md beside the head).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import Judged, SafetyFilter

MODES = ("prompt", "response", "response_in_context")
FEATURES = {"prompt": "p", "response": "r", "response_in_context": "p,r,p*r,|p-r|"}
# stacked in-context features: needs proj["hp"] (on p) and proj["cr"] (on r), weights + bias each
STACKED = "hp,cr,hp*cr,p,r,p*r,|p-r|"
DEFAULT_HEAD = "default_head.npz"
ENCODER_DTYPES = ("float32", "bfloat16")


class Encoder(Protocol):
    """Anything that maps texts to L2-normalised vectors (MiniLM, or a fake in tests)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


def features(
    kind: str, p: np.ndarray | None, r: np.ndarray | None, proj: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """Build the feature matrix named by ``kind`` from prompt and response embeddings
    (``proj`` holds the projections that the stacked features ``hp``/``cr`` need).

    ``kind`` is a comma-separated list of ``p``, ``r``, ``|p-r|``, ``hp``, ``cr`` and products of
    them (``p*r``, ``hp*cr``, ``hp*r``: the response embedding gated by how harmful the request is)."""
    atoms: dict[str, np.ndarray] = {}

    def atom(name: str) -> np.ndarray:
        if name not in atoms:
            if name in ("hp", "cr"):
                atoms[name] = _project(proj, name, p if name == "hp" else r)
            elif name == "p":
                atoms[name] = _need(p, name)
            elif name == "r":
                atoms[name] = _need(r, name)
            elif name == "|p-r|":
                atoms[name] = np.abs(_need(p, name) - _need(r, name))
            else:
                raise ValueError(f"unknown feature {name!r} in {kind!r}")
        return atoms[name]

    parts: list[np.ndarray] = []
    for name in kind.split(","):
        factors = [atom(f) for f in name.split("*")] if name != "|p-r|" else [atom(name)]
        out = factors[0]
        for f in factors[1:]:
            out = out * f
        parts.append(out)
    return np.concatenate(parts, axis=1).astype(np.float32)


def _project(proj: dict[str, np.ndarray] | None, name: str, x: np.ndarray | None) -> np.ndarray:
    if not proj or name not in proj:
        raise ValueError(f"feature {name!r} needs a projection that this head does not have")
    w = proj[name]
    return (_need(x, "p" if name == "hp" else "r") @ w[:-1] + w[-1])[:, None]


def _need(x: np.ndarray | None, name: str) -> np.ndarray:
    if x is None:
        raise ValueError(f"feature {name!r} needs an embedding that this mode does not provide")
    return x


@dataclass
class LinearHead:
    """One mode's logistic regression: ``sigmoid(x @ coef + intercept)``."""

    features: str
    coef: np.ndarray
    intercept: float
    proj: dict[str, np.ndarray] = field(default_factory=dict)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


@dataclass
class Head:
    """The per-mode heads plus the record of how they were made."""

    heads: dict[str, LinearHead]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def max_seq_length(self) -> int:
        return int(self.meta.get("max_seq_length", 128))

    @property
    def encoder_dtype(self) -> str:
        """The encoder dtype the head was trained and validated on (older heads: float32)."""
        return str(self.meta.get("encoder_dtype", "float32"))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(self.meta, sort_keys=True))}
        for mode, h in self.heads.items():
            arrays[f"{mode}.coef"] = h.coef.astype(np.float32)
            arrays[f"{mode}.intercept"] = np.array(h.intercept, dtype=np.float64)
            arrays[f"{mode}.features"] = np.array(h.features)
            for name, w in h.proj.items():
                arrays[f"{mode}.proj.{name}"] = w.astype(np.float32)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> Head:
        """Load a head file; ``None`` loads the one shipped in the package."""
        if path is None:
            ref = resources.files("fedrai.safety.filters").joinpath("heads", DEFAULT_HEAD)
            with resources.as_file(ref) as p:
                return cls._read(p)
        return cls._read(Path(path))

    @classmethod
    def _read(cls, path: Path) -> Head:
        if not path.is_file():
            raise FileNotFoundError(
                f"safety head {path} not found; train one with `fedrai safety train-filter`"
            )
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            heads = {
                m: LinearHead(
                    str(z[f"{m}.features"]),
                    z[f"{m}.coef"].astype(np.float32),
                    float(z[f"{m}.intercept"]),
                    {
                        k.removeprefix(f"{m}.proj."): z[k].astype(np.float32)
                        for k in z.files
                        if k.startswith(f"{m}.proj.")
                    },
                )
                for m in MODES
                if f"{m}.coef" in z.files
            }
        return cls(heads, meta)


class SentenceEncoder:
    """all-MiniLM-L6-v2 (or any sentence-transformers dir) on CPU, normalised embeddings.

    Identical texts in a batch are encoded once: client data often repeats system prompts,
    questions and templated refusals. Texts are sorted by length and padded per batch (by
    sentence-transformers), so a batch of short prompts does not pay for a long response.

    ``threads``: torch intra-op threads while encoding (0: torch's setting, all cores). On a
    machine shared with other jobs one thread was 4-8x faster than two on 2 cores (threads that
    wait for each other at every op when another process holds a core); see MADE.md.

    ``dtype``: ``float32``, or ``bfloat16`` weights and activations (about 3.5x the throughput
    on CPUs with AMX / AVX512-BF16, where oneDNN runs bf16 matmuls natively; far slower on CPUs
    without them). The embeddings differ slightly between the two, so a head is trained and
    validated on one of them and records it (``Head.encoder_dtype``).
    """

    def __init__(
        self,
        ref: str,
        max_seq_length: int = 128,
        batch_size: int = 32,
        dtype: str = "float32",
        threads: int = 0,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        from fedrai.assets import resolve

        if dtype not in ENCODER_DTYPES:
            raise ValueError(f"encoder dtype {dtype!r}: expected one of {', '.join(ENCODER_DTYPES)}")
        self.model = SentenceTransformer(resolve(ref), device="cpu")
        self.model.max_seq_length = max_seq_length
        if dtype == "bfloat16":
            import torch

            self.model.to(torch.bfloat16)
        self.batch_size = batch_size
        self.dtype = dtype
        self.threads = threads  # torch intra-op threads while encoding; 0 = leave torch's setting

    def encode(self, texts: list[str]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        if not unique:
            dim = getattr(
                self.model, "get_embedding_dimension", self.model.get_sentence_embedding_dimension
            )()
            return np.zeros((0, dim or 1), np.float32)
        import torch

        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)  # restored below: the process's other work keeps its own
        try:
            vecs = self.model.encode(unique, batch_size=self.batch_size, convert_to_tensor=True)
        finally:
            if self.threads:
                torch.set_num_threads(previous)
        vecs = vecs.float().numpy()  # normalised in float32 whatever the compute dtype
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        index = {t: i for i, t in enumerate(unique)}
        return vecs[[index[t] for t in texts]]


class EmbeddedFilter(SafetyFilter):
    """MiniLM + trained head. No categories: it answers safe/unsafe only."""

    name = "embedded"

    def __init__(self, cfg: SafetyConfig, encoder: Encoder | None = None, head: Head | None = None) -> None:
        super().__init__(cfg)
        self.head = head or Head.load(cfg.head_path)
        if cfg.mode not in self.head.heads:
            raise ValueError(f"safety head has no {cfg.mode!r} head (has: {', '.join(self.head.heads)})")
        dtype = self.head.encoder_dtype if cfg.encoder_dtype == "head" else cfg.encoder_dtype
        if dtype != self.head.encoder_dtype:
            warnings.warn(
                f"safety head was trained on {self.head.encoder_dtype} embeddings but the encoder runs "
                f"in {dtype} (safety.encoder_dtype): its threshold and figures were not validated for "
                "that; retrain it with `fedrai safety train-filter --encoder-dtype` to match",
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
        head = self.head.heads[self.cfg.mode]
        probs = head.predict_proba(embed_features(self.encoder, head.features, prompts, responses, head.proj))
        return [Judged(float(p)) for p in probs]


def embed_features(
    encoder: Encoder,
    kind: str,
    prompts: list[str],
    responses: list[str | None],
    proj: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Encode what ``kind`` needs (in one encoder call) and build the features."""
    names = kind.split(",")
    need_p = any("p" in n for n in names)  # p, p*r, |p-r|, hp, hp*cr
    need_r = any("r" in n for n in names)  # r, p*r, |p-r|, cr, hp*cr
    texts: list[str] = (list(prompts) if need_p else []) + ([r or "" for r in responses] if need_r else [])
    vecs = encoder.encode(texts)
    n = len(prompts)
    p = vecs[:n] if need_p else None
    r = vecs[n:] if need_p and need_r else (vecs if need_r else None)
    return features(kind, p, r, proj)
