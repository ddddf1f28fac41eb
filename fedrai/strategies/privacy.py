"""Central differential privacy with Flower's own strategy wrappers, around any registry strategy.

``[privacy] clipping`` picks one of ``flwr.serverapp.strategy``'s wrappers; the wrapped strategy is
the registry's (with its guard). Order inside a round: the structural checks of the guard run
first (a malformed reply would break clipping); then the wrapper clips each update (server-side
variants; client-side ones clip in Flower's mod on the ClientApp, see ``clients.privacy_mod``);
then the norm rule, safety screening and the aggregator see the clipped updates; the wrapper
adds Gaussian noise to the aggregate last.

Epsilon is not reported. Flower 1.42's accountant (``flwr.supercore.privacy_accounting``) only
accepts fixed clipping with Flower's unmodified ``FedAvg.aggregate_train``, equal client weights
and every sampled reply present; our guard changes the aggregate (it may drop or down-weight
replies, and the wrapper's noise stays calibrated to the sampled count), so its guarantee would
not hold. The metrics carry the clipping norm, noise multiplier and noise std of each round.
"""

from __future__ import annotations

from typing import Any

from flwr.serverapp import strategy as flwr_strategy
from flwr.supercore.differential_privacy import compute_stdv

from fedrai.config.defences import PrivacyConfig

WRAPPERS: dict[str, str] = {
    "server_fixed": "DifferentialPrivacyServerSideFixedClipping",
    "client_fixed": "DifferentialPrivacyClientSideFixedClipping",
    "server_adaptive": "DifferentialPrivacyServerSideAdaptiveClipping",
    "client_adaptive": "DifferentialPrivacyClientSideAdaptiveClipping",
}


class DelegatingWrapper:
    """Lets the round driver use a DP wrapper like the strategy it wraps (state, traffic, keys)."""

    def __getattr__(self, name: str) -> Any:
        if name == "strategy":  # not set yet: avoid recursing during __init__
            raise AttributeError(name)
        return getattr(self.strategy, name)

    def privacy_metrics(self) -> dict[str, float]:
        nm, clip, n = self.noise_multiplier, self.clipping_norm, self.num_sampled_clients  # type: ignore[attr-defined]
        return {
            "privacy.clipping_norm": float(clip),
            "privacy.noise_multiplier": float(nm),
            "privacy.noise_stdv": float(compute_stdv(nm, clip, n)),
        }


def wrapper_class(cfg: PrivacyConfig) -> type:
    """Flower's wrapper class for ``privacy.clipping``."""
    return getattr(flwr_strategy, WRAPPERS[cfg.clipping])


def wrapper_kwargs(cfg: PrivacyConfig, num_sampled: int) -> dict[str, Any]:
    if cfg.clipping.endswith("fixed"):
        return {
            "noise_multiplier": cfg.noise_multiplier,
            "clipping_norm": cfg.clipping_norm,
            "num_sampled_clients": num_sampled,
        }
    return {
        "noise_multiplier": cfg.noise_multiplier,
        "num_sampled_clients": num_sampled,
        "initial_clipping_norm": cfg.clipping_norm,
        "target_clipped_quantile": cfg.target_clipped_quantile,
        "clip_norm_lr": cfg.clip_norm_lr,
    }
