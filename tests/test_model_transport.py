import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from fedrai.config import LoraSettings, ModelConfig
from fedrai.data.formatting import IGNORE_INDEX, tokenize_row
from fedrai.model import get_adapter_state, load_model, set_adapter_state
from fedrai.transport import from_arrays, payload_bytes, to_arrays


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(ModelConfig(name_or_path=str(tiny_model_dir)), LoraSettings(r=4, alpha=8), seed=0)


def _perturbed(state):
    g = torch.Generator().manual_seed(1)
    return {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in state.items()}


def test_lora_init_depends_on_seed_only(tiny_model_dir):
    cfg = ModelConfig(name_or_path=str(tiny_model_dir))
    a = get_adapter_state(load_model(cfg, LoraSettings(r=4), seed=3)[0])
    b = get_adapter_state(load_model(cfg, LoraSettings(r=4), seed=3)[0])
    c = get_adapter_state(load_model(cfg, LoraSettings(r=4), seed=4)[0])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_only_adapter_tensors_travel(tiny, tiny_model_dir):
    from transformers import AutoConfig

    model, _ = tiny
    state = get_adapter_state(model)
    assert state and all("lora_" in k for k in state)
    # Exactly LoRA's A (r x in) and B (out x r) for q/k/v/o in every layer, from the model's shape:
    c = AutoConfig.from_pretrained(str(tiny_model_dir))
    h, r = c.hidden_size, 4
    head = getattr(c, "head_dim", None) or h // c.num_attention_heads
    q, kv = c.num_attention_heads * head, c.num_key_value_heads * head
    per_layer = r * ((h + q) + (h + kv) + (h + kv) + (q + h))
    trainable = sum(v.numel() for v in state.values())
    assert trainable == c.num_hidden_layers * per_layer
    assert len(state) == c.num_hidden_layers * 4 * 2
    record = to_arrays(state, "float32")
    data = trainable * 4  # float32 on the wire, plus the keys and a .npy header (128 bytes) per tensor
    assert data < payload_bytes(record) <= data + sum(len(k) for k in state) + 128 * len(state)


@pytest.mark.parametrize("wire", ["float32", "float16"])
def test_arrays_round_trip(tiny, wire):
    model, _ = tiny
    state = _perturbed(get_adapter_state(model))
    back = from_arrays(to_arrays(state, wire))
    assert list(back) == list(state)
    tol = 0 if wire == "float32" else 1e-3
    for k in state:
        assert back[k].dtype == torch.float32
        assert torch.allclose(back[k], state[k], atol=tol)
    assert next(iter(to_arrays(state, wire).values())).numpy().dtype == np.dtype(wire)


def test_bfloat16_is_cast_for_the_wire(tiny):
    state = {k: v.to(torch.bfloat16) for k, v in get_adapter_state(tiny[0]).items()}
    record = to_arrays(state, "float32")
    assert next(iter(record.values())).numpy().dtype == np.float32


def test_set_adapter_state_checks_keys_and_shapes(tiny):
    model, _ = tiny
    state = get_adapter_state(model)
    key = next(iter(state))
    with pytest.raises(ValueError, match="missing"):
        set_adapter_state(model, {k: v for k, v in state.items() if k != key})
    bad = dict(state)
    bad[key] = torch.zeros(1)
    with pytest.raises(ValueError, match="shape"):
        set_adapter_state(model, bad)


def test_saved_adapter_reloads_with_peft(tiny, tiny_model_dir, tmp_path):
    model, _ = tiny
    state = _perturbed(get_adapter_state(model))
    set_adapter_state(model, state)
    model.save_pretrained(str(tmp_path / "adapter"))
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    got = get_adapter_state(reloaded)
    assert all(torch.allclose(got[k], state[k]) for k in state)
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, model(ids).logits, atol=1e-5)


def test_tokenize_row_masks_prompt(tiny):
    _, tokenizer = tiny
    row = {
        "id": "r",
        "messages": [{"role": "user", "content": "bake bread?"}],
        "response": "Mix flour.",
        "origin": "benign",
        "group": "g",
    }
    out = tokenize_row(tokenizer, row, 256)
    assert out is not None and len(out["input_ids"]) == len(out["labels"])
    n_prompt = sum(1 for x in out["labels"] if x == IGNORE_INDEX)
    assert 0 < n_prompt < len(out["labels"])
    answer = tokenizer.decode(
        [t for t, lab in zip(out["input_ids"], out["labels"], strict=True) if lab != IGNORE_INDEX]
    )
    assert "Mix flour." in answer
    assert tokenize_row(tokenizer, row, n_prompt) is None  # no response token fits
