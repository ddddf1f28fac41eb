"""Fakes for the safety tests: a hashing bag-of-words encoder (no model needed)."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class HashEncoder:
    """Texts -> L2-normalised hashed bag-of-words vectors; deterministic, instant."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z']+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)
