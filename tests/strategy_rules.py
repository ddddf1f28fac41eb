"""Each aggregation strategy's first-round rule, written out in numpy from its definition.

Used to check that a strategy's aggregate equals its rule on known inputs (``x``: the adapter the
clients started from; ``clients``: what they sent back, with their example counts). Fresh state,
so momentum and moment buffers start at zero (FedAvgM's starts at the first pseudo-gradient).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import trim_mean

from fedrai.config import StrategyConfig

Arrays = dict[str, np.ndarray]


def weighted_mean(clients: list[Arrays], weights: list[int]) -> Arrays:
    total = float(sum(weights))
    return {k: sum(c[k] * (w / total) for c, w in zip(clients, weights, strict=True)) for k in clients[0]}


def krum_scores(clients: list[Arrays], num_malicious: int) -> list[float]:
    """Each client's sum of squared L2 distances to its n - f - 2 nearest neighbours (all arrays)."""
    flat = np.stack([np.concatenate([c[k].ravel() for k in sorted(c)]) for c in clients]).astype(np.float64)
    dist = ((flat[:, None, :] - flat[None, :, :]) ** 2).sum(-1)
    m = max(1, len(clients) - num_malicious - 2)
    return [float(np.sort(np.delete(row, i))[:m].sum()) for i, row in enumerate(dist)]


def krum_pick(clients: list[Arrays], num_malicious: int) -> int:
    """The client whose n - f - 2 nearest neighbours (squared L2 over all arrays) are closest."""
    return int(np.argmin(krum_scores(clients, num_malicious)))


def multikrum_picks(clients: list[Arrays], num_malicious: int, select: int) -> list[int]:
    """The ``select`` clients with the lowest Krum scores."""
    return [int(i) for i in np.argsort(krum_scores(clients, num_malicious), kind="stable")[:select]]


def bulyan(clients: list[Arrays], num_malicious: int) -> Arrays:
    """Mhamdi et al.: theta = n - 2f by Multi-Krum, then per coordinate the mean of the
    beta = theta - 2f values closest to the coordinate-wise median of the selected (unweighted)."""
    theta = len(clients) - 2 * num_malicious
    beta = theta - 2 * num_malicious
    chosen = [clients[i] for i in multikrum_picks(clients, num_malicious, theta)]
    out = {}
    for k in chosen[0]:
        stack = np.stack([c[k] for c in chosen]).astype(np.float64)
        order = np.argsort(np.abs(stack - np.median(stack, axis=0)), axis=0, kind="stable")[:beta]
        out[k] = np.take_along_axis(stack, order, axis=0).mean(axis=0)
    return out


def expected_aggregate(
    name: str,
    cfg: StrategyConfig,
    x: Arrays,
    clients: list[Arrays],
    weights: list[int],
    server_round: int = 1,
) -> Arrays:
    """What strategy ``name`` must return in its first aggregation."""
    avg = weighted_mean(clients, weights)
    delta = {k: avg[k] - x[k] for k in x}
    lr, b1, b2, tau = cfg.server_learning_rate, cfg.beta_1, cfg.beta_2, cfg.tau
    eta = cfg.fedopt_eta  # FedAdam / FedYogi / FedAdagrad
    if name in ("fedavg", "fedprox"):
        return avg
    if name in ("fedavgm", "scaffold"):  # x - lr * (x - avg): momentum buffer = first pseudo-gradient
        return {k: x[k] + lr * delta[k] for k in x}
    if name == "fedadam":  # Adam with Flower's bias-corrected step size (exponents: round + 1)
        step = eta * np.sqrt(1 - b2 ** (server_round + 1.0)) / (1 - b1 ** (server_round + 1.0))
        return {k: x[k] + step * (1 - b1) * d / (np.sqrt((1 - b2) * d**2) + tau) for k, d in delta.items()}
    if name == "fedyogi":  # v = 0 - (1 - b2) d^2 sign(0 - d^2) = (1 - b2) d^2
        return {k: x[k] + eta * (1 - b1) * d / (np.sqrt((1 - b2) * d**2) + tau) for k, d in delta.items()}
    if name == "fedadagrad":  # no first moment (beta_1 = 0); v = d^2
        return {k: x[k] + eta * d / (np.sqrt(d**2) + tau) for k, d in delta.items()}
    if name == "fedmedian":
        return {k: np.median(np.stack([c[k] for c in clients]), axis=0) for k in x}
    if name == "fedtrimmedavg":
        return {k: trim_mean(np.stack([c[k] for c in clients]), cfg.trim_beta, axis=0) for k in x}
    if name == "krum":
        return dict(clients[krum_pick(clients, cfg.num_malicious_clients)])
    if name == "multikrum":  # the picked replies, averaged by their example counts
        picks = multikrum_picks(clients, cfg.num_malicious_clients, cfg.krum_select)
        return weighted_mean([clients[i] for i in picks], [weights[i] for i in picks])
    if name == "bulyan":
        return bulyan(clients, cfg.num_malicious_clients)
    raise KeyError(f"no rule written for strategy {name!r}")
