"""An encoder wrapper that embeds each distinct text once, optionally persisted between trainings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fedrai.safety.filters.embedded import Encoder


def encoder_tag(encoder_ref: str, max_seq_length: int, dtype: str) -> str:
    """What an embedding cache is keyed on: embeddings of another encoder config never mix."""
    return f"{encoder_ref}|{max_seq_length}" + ("" if dtype == "float32" else f"|{dtype}")


class CachedEncoder:
    """Encodes each distinct text once across calls; optionally persisted to an ``.npz`` file
    so that retraining (other features, thresholds, user labels) does not re-encode."""

    def __init__(self, inner: Encoder, path: str | Path | None = None, tag: str = "") -> None:
        self.inner = inner
        self.path = Path(path) if path else None
        self.tag = tag
        self.cache: dict[str, np.ndarray] = {}
        if self.path and self.path.is_file():
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["tag"]) == tag:
                    self.cache = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))

    def _key(self, text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.cache}
        if todo:
            for k, v in zip(todo, self.inner.encode(list(todo.values())), strict=True):
                self.cache[k] = v
        return np.stack([self.cache[k] for k in keys]) if texts else np.zeros((0, 1), np.float32)

    def save(self) -> None:
        if self.path and self.cache:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self.cache)
            with open(self.path, "wb") as f:
                np.savez(
                    f,
                    tag=np.array(self.tag),
                    keys=np.array(keys),
                    vecs=np.stack([self.cache[k] for k in keys]),
                )
