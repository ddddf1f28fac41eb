import pytest
import torch

from fedrai.config import LoraSettings, ModelConfig, TrainConfig
from fedrai.model import get_adapter_state, load_model
from fedrai.training import round_learning_rate, train_lora

ROWS = [
    {
        "id": f"r{i}",
        "messages": [{"role": "user", "content": "How do I bake bread?"}],
        "response": "Mix flour, water, yeast and salt, knead, let it rise, then bake.",
        "origin": "benign",
        "group": "g",
    }
    for i in range(8)
]


@pytest.fixture
def tiny(tiny_model_dir):
    return load_model(
        ModelConfig(name_or_path=str(tiny_model_dir)), LoraSettings(r=8, alpha=16, dropout=0.0), seed=0
    )


def _train(model, tok, **kw):
    args = dict(steps=12, batch_size=4, grad_accum=1, learning_rate=5e-3, max_seq_length=128, seed=0)
    args.update(kw)
    return train_lora(model, tok, ROWS, **args)


def test_a_few_steps_lower_the_loss(tiny):
    result = _train(*tiny, steps=12, learning_rate=3e-2)
    assert result.steps == 12 and result.examples == 8
    assert result.loss_last < result.loss_first - 0.1


def test_training_is_deterministic(tiny_model_dir):
    states = []
    for _ in range(2):
        model, tok = load_model(
            ModelConfig(name_or_path=str(tiny_model_dir)), LoraSettings(r=4, dropout=0.1), seed=0
        )
        _train(model, tok, steps=3)
        states.append(get_adapter_state(model))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_proximal_term_keeps_weights_closer(tiny_model_dir):
    drift = {}
    for mu in (0.0, 50.0):
        model, tok = load_model(
            ModelConfig(name_or_path=str(tiny_model_dir)), LoraSettings(r=4, dropout=0.0), seed=0
        )
        start = get_adapter_state(model)
        _train(model, tok, steps=6, proximal_mu=mu, optimizer="sgd", learning_rate=0.05)
        end = get_adapter_state(model)
        drift[mu] = sum(float((end[k] - start[k]).norm()) for k in start)
    assert drift[50.0] < drift[0.0]


def test_gradient_correction_is_applied(tiny_model_dir):
    model, tok = load_model(
        ModelConfig(name_or_path=str(tiny_model_dir)), LoraSettings(r=4, dropout=0.0), seed=0
    )
    start = get_adapter_state(model)
    big = {k: torch.full_like(v, 1.0) for k, v in start.items()}
    _train(model, tok, steps=1, optimizer="sgd", learning_rate=0.1, grad_correction=big, max_grad_norm=0.0)
    end = get_adapter_state(model)
    # A correction of +1 on every gradient moves every tensor down by about lr in one SGD step.
    moved = [float((start[k] - end[k]).mean()) for k in start]
    assert all(m > 0.05 for m in moved)


def test_rows_without_room_for_a_response(tiny):
    with pytest.raises(ValueError, match="no trainable rows"):
        _train(*tiny, max_seq_length=4)


def test_learning_rate_decays_across_rounds():
    cfg = TrainConfig(learning_rate=1e-3, lr_schedule="cosine", min_lr_ratio=0.1)
    lrs = [round_learning_rate(cfg, r, 5) for r in range(1, 6)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    assert round_learning_rate(TrainConfig(lr_schedule="constant"), 4, 5) == TrainConfig().learning_rate
