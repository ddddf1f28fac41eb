"""Safety filters by backend name; see :mod:`fedrai.safety.filters.base` for the interface."""

from __future__ import annotations

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import INVALID_INPUT_REASONS, Judged, SafetyFilter, Verdict

__all__ = ["INVALID_INPUT_REASONS", "Judged", "SafetyFilter", "Verdict", "build_filter"]


def build_filter(cfg: SafetyConfig) -> SafetyFilter:
    """The configured backend, loaded (model weights are read here, once per client)."""
    if cfg.backend == "factored":
        from fedrai.safety.filters.factored import FactoredFilter

        return FactoredFilter(cfg)
    if cfg.backend == "cross_encoder":
        from fedrai.safety.filters.cross_encoder import CrossEncoderFilter

        return CrossEncoderFilter(cfg)
    if cfg.backend == "embedded":
        from fedrai.safety.filters.embedded import EmbeddedFilter

        return EmbeddedFilter(cfg)
    if cfg.backend == "llama_guard":
        from fedrai.safety.filters.llama_guard import LlamaGuardFilter

        return LlamaGuardFilter(cfg)
    if cfg.backend == "detoxify":
        from fedrai.safety.filters.detoxify import DetoxifyFilter

        return DetoxifyFilter(cfg)
    raise ValueError(f"unknown safety backend {cfg.backend!r}")
