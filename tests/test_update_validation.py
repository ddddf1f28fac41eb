"""Every reply is validated before aggregation, for every strategy of the registry.

Hand-made replies: honest ones plus one broken in a single way. The round must aggregate exactly
what the honest replies alone give (the same strategy, fresh, fed only those), count the broken
one under its reason, and leave the global adapter unchanged when nothing usable is left.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common import MessageType
from flwr.supercore.differential_privacy import KEY_NORM_BIT

from fedrai.config import ExperimentConfig
from fedrai.config.defences import PrivacyConfig, ValidationConfig
from fedrai.strategies import STRATEGY_NAMES, build_strategy
from fedrai.strategies.scaffold import CONTROL_DELTA_KEY
from fedrai.strategies.validation import PARTITION_METRIC, robust_z
from fedrai.transport import from_arrays, to_arrays
from tests.test_scaffold import nodes


@pytest.fixture(autouse=True)
def _server_identity():
    nodes(1)  # Flower Messages need the ServerApp identity set


SHAPES = {"m.lora_A.weight": (8, 16), "m.lora_B.weight": (16, 8)}  # enough entries for stable norms
N_HONEST = 5


def tensors(rng: np.random.Generator, scale: float = 1.0) -> dict[str, torch.Tensor]:
    return {
        k: torch.as_tensor(rng.normal(scale=scale, size=s), dtype=torch.float32) for k, s in SHAPES.items()
    }


def make_reply(
    y: dict[str, torch.Tensor], partition: int, dc: dict[str, torch.Tensor] | None, weight: float = 2.0
) -> Message:
    content = RecordDict(
        {
            "arrays": to_arrays(y),
            "metrics": MetricRecord({"num-examples": weight, PARTITION_METRIC: partition}),
        }
    )
    if dc is not None:
        content[CONTROL_DELTA_KEY] = to_arrays(dc)
    return Message(content=content, dst_node_id=0, message_type=MessageType.TRAIN)


def build(name: str, num_clients: int, validation: ValidationConfig | None = None, privacy=None):
    strategy = {"name": name, "min_train_clients": num_clients, "min_available_clients": num_clients}
    cfg = ExperimentConfig.from_dict({"strategy": strategy, "federation": {"num_clients": num_clients}})
    return build_strategy(cfg.strategy, num_clients, validation=validation, privacy=privacy)


def honest_updates(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = tensors(rng)
    ys = [
        {k: v + 0.05 * torch.as_tensor(rng.normal(size=v.shape), dtype=torch.float32) for k, v in x.items()}
        for _ in range(N_HONEST)
    ]
    dcs = [tensors(rng, 0.1) for _ in range(N_HONEST)]
    return x, ys, dcs


def aggregate(strategy, x, replies, num_nodes: int = 0):
    grid = nodes(num_nodes or len(replies))
    strategy.configure_train(1, to_arrays(x), ConfigRecord({"lr": 0.1}), grid)
    new, _ = strategy.aggregate_train(1, replies)
    return None if new is None else from_arrays(new)


def broken(kind: str, x, y, dc, name: str):
    """One reply broken in one way; returns (reply, expected reason)."""
    y, dc = dict(y), dict(dc)
    key = next(iter(SHAPES))
    if kind == "nonfinite":
        y[key] = y[key].clone()
        y[key][0, 0] = float("nan")
    elif kind == "nonfinite_control":
        dc[key] = dc[key].clone()
        dc[key][0, 0] = float("inf")
    elif kind == "shape":
        y[key] = torch.zeros(4, 4)  # no adapter tensor has this shape
    elif kind == "keys":
        y["other.weight"] = y.pop(key)
    elif kind == "dtype":
        return make_reply_fp16(y, dc if name == "scaffold" else None), "dtype"
    elif kind == "norm":
        y = {k: x[k] + 100.0 * (v - x[k]) + 50.0 for k, v in y.items()}
    elif kind == "weight":
        return make_reply(y, 99, dc if name == "scaffold" else None, weight=float("inf")), "weight"
    elif kind == "metrics":
        msg = make_reply(y, 99, dc if name == "scaffold" else None)
        msg.content["metrics"]["extra"] = 1.0
        return msg, "metrics"
    elif kind == "records":
        return make_reply(y, 99, None if name == "scaffold" else dc), "records"
    reason = "nonfinite" if kind.startswith("nonfinite") else kind
    return make_reply(y, 99, dc if name == "scaffold" else None), reason


def make_reply_fp16(y, dc):
    msg = make_reply(y, 99, dc)
    msg.content["arrays"] = to_arrays(y, "float16")
    return msg


KINDS = ["nonfinite", "shape", "keys", "dtype", "norm", "weight", "metrics", "records"]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_reply_is_rejected_counted_and_the_rest_aggregated(name, kind):
    x, ys, dcs = honest_updates()
    use_dc = name == "scaffold"
    honest = [make_reply(y, i, dc if use_dc else None) for i, (y, dc) in enumerate(zip(ys, dcs, strict=True))]
    bad, reason = broken(kind, x, ys[0], dcs[0], name)
    strategy = build(name, N_HONEST + 1)
    got = aggregate(strategy, x, [*honest, bad])
    report = strategy.round_report()
    assert report[f"updates.rejected.{reason}"] == 1.0
    assert report["updates.rejected"] == 1.0 and report["updates.accepted"] == N_HONEST
    assert report["clients.99.rejected"] == 1.0
    clean = [make_reply(y, i, dc if use_dc else None) for i, (y, dc) in enumerate(zip(ys, dcs, strict=True))]
    want = aggregate(build(name, N_HONEST + 1), x, clean, N_HONEST + 1)
    assert got is not None and want is not None
    for k in SHAPES:
        assert torch.isfinite(got[k]).all()
        torch.testing.assert_close(got[k], want[k])


def test_scaffold_control_deltas_are_validated_too():
    x, ys, dcs = honest_updates()
    honest = [make_reply(y, i, dc) for i, (y, dc) in enumerate(zip(ys, dcs, strict=True))]
    bad, reason = broken("nonfinite_control", x, ys[0], dcs[0], "scaffold")
    strategy = build("scaffold", N_HONEST + 1)
    aggregate(strategy, x, [*honest, bad])
    assert reason == "nonfinite" and strategy.round_report()["updates.rejected.nonfinite"] == 1.0
    assert all(np.isfinite(c).all() for c in strategy.server_control.values())


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_with_nothing_usable_left_the_round_returns_no_aggregate(name):
    x, ys, dcs = honest_updates()
    bad = [broken("nonfinite", x, y, dc, name)[0] for y, dc in zip(ys[:3], dcs[:3], strict=True)]
    strategy = build(name, 3)
    assert aggregate(strategy, x, bad) is None
    assert strategy.round_report()["updates.rejected.nonfinite"] == 3.0


@pytest.mark.parametrize("name", ["fedavg", "krum", "scaffold"])
def test_the_mad_rule_rejects_an_outlying_norm_the_bound_lets_through(name):
    x, ys, dcs = honest_updates(1)
    use_dc = name == "scaffold"
    boosted = {k: x[k] + 5.0 * (v - x[k]) for k, v in ys[0].items()}  # 5x an honest update: ratio < 10
    replies = [
        make_reply(y, i, dc if use_dc else None) for i, (y, dc) in enumerate(zip(ys, dcs, strict=True))
    ]
    replies.append(make_reply(boosted, 99, dcs[0] if use_dc else None))
    bound = build(name, 6)
    aggregate(bound, x, replies)
    assert bound.round_report().get("updates.rejected.norm", 0.0) == 0.0
    assert bound.round_report()["clients.99.norm_ratio"] < 10
    mad = build(name, 6, ValidationConfig(norm_rule="mad"))
    aggregate(
        mad,
        x,
        [
            make_reply(
                from_arrays(m.content["arrays"]),
                int(m.content["metrics"][PARTITION_METRIC]),
                from_arrays(m.content[CONTROL_DELTA_KEY]) if use_dc else None,
            )
            for m in replies
        ],
    )
    assert mad.round_report()["updates.rejected.norm"] == 1.0
    assert mad.round_report()["clients.99.rejected"] == 1.0


def test_robust_z_flags_only_the_outlier():
    z = robust_z([1.0, 1.1, 0.9, 1.05, 5.0])
    assert z[-1] > 3.5 and max(z[:-1]) < 3.5


def test_validation_can_be_turned_off():
    x, ys, dcs = honest_updates()
    bad, _ = broken("nonfinite", x, ys[0], dcs[0], "fedavg")
    strategy = build("fedavg", 2, ValidationConfig(enabled=False))
    got = aggregate(strategy, x, [make_reply(ys[1], 1, None), bad])
    assert not torch.isfinite(got[next(iter(SHAPES))]).all()  # what happened before this guard


@pytest.mark.parametrize("clipping", ["server_fixed", "client_fixed", "server_adaptive", "client_adaptive"])
def test_dp_wrappers_see_only_valid_replies_and_report_their_settings(clipping):
    x, ys, dcs = honest_updates()
    privacy = PrivacyConfig(clipping=clipping, noise_multiplier=0.0, clipping_norm=0.01)
    replies = [make_reply(y, i, None) for i, y in enumerate(ys[:3])]
    if clipping == "client_adaptive":
        for m in replies:
            m.content["metrics"][KEY_NORM_BIT] = 1
    bad, _ = broken("shape", x, ys[3], dcs[3], "fedavg")
    strategy = build("fedavg", 4, privacy=privacy)
    got = aggregate(strategy, x, [*replies, bad])
    report = strategy.round_report()
    assert report["updates.rejected.shape"] == 1.0 and report["privacy.noise_multiplier"] == 0.0
    assert report["privacy.clipping_norm"] > 0 and "privacy.noise_stdv" in report
    assert got is not None
    if clipping == "server_fixed":  # each update clipped to 0.01, so the mean moved at most 0.01
        step = np.sqrt(sum(float(((got[k] - x[k]) ** 2).sum()) for k in SHAPES))
        assert step <= 0.01 + 1e-6
    assert strategy.capture_state() is not None  # the round driver's protocol passes through


def test_privacy_with_scaffold_is_refused():
    with pytest.raises(Exception, match="scaffold"):
        ExperimentConfig.from_dict(
            {"strategy": {"name": "scaffold"}, "privacy": {"clipping": "server_fixed"}}
        )


def test_the_round_row_says_which_updates_the_aggregate_followed():
    """Krum's pick sits at distance 0 from the aggregate; the median follows the honest direction, not
    an update of ordinary size that points the other way."""
    rng = np.random.default_rng(3)
    x = tensors(rng)
    common = tensors(rng, 0.05)
    ys = [{k: x[k] + common[k] + 0.5 * tensors(rng, 0.05)[k] for k in SHAPES} for _ in range(N_HONEST)]
    outlier = {k: x[k] - 1.5 * common[k] for k in SHAPES}

    def replies():
        return [make_reply(y, i, None) for i, y in enumerate([*ys, outlier])]

    krum = build("krum", N_HONEST + 1)
    got = aggregate(krum, x, replies())
    row = krum.round_report()
    distances = {i: row[f"clients.{i}.agg_distance"] for i in range(N_HONEST + 1)}
    picked = min(distances, key=distances.get)
    assert picked != N_HONEST and distances[picked] == pytest.approx(0.0, abs=1e-6)
    assert all(d > 0.1 for i, d in distances.items() if i != picked)
    key = next(iter(SHAPES))
    torch.testing.assert_close(got[key], ys[picked][key])
    median = build("fedmedian", N_HONEST + 1)
    aggregate(median, x, replies())
    row = median.round_report()
    assert (
        row[f"clients.{N_HONEST}.agg_cosine"]
        < 0
        < min(row[f"clients.{i}.agg_cosine"] for i in range(N_HONEST))
    )
