"""Batched generation and response-only loss on a tiny random Llama (fp32)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fedrai.data import Row
from fedrai.evaluation.generation import generate, render_prompt, response_loss

PROMPTS = [
    "How do I bake bread?",
    "Write a poem about the sea. The waves roll in under a silver moon, and then?",
    "Explain photosynthesis",
    "What is the capital of France? Rhymes with grace: space, place, lace. Tell me more please.",
    "Sorry",
    "I cannot help with that request. It could cause harm to people. As an AI, I must decline.",
    "Is there something else I can help with?",
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    return model, tokenizer


def _convs(prompts: list[str]) -> list[list[dict]]:
    return [[{"role": "user", "content": p}] for p in prompts]


def test_batched_and_unbatched_greedy_agree(tiny) -> None:
    model, tokenizer = tiny
    one_by_one = generate(model, tokenizer, _convs(PROMPTS), max_new_tokens=8, batch_size=1)
    batched = generate(model, tokenizer, _convs(PROMPTS), max_new_tokens=8, batch_size=4)
    all_at_once = generate(model, tokenizer, _convs(PROMPTS), max_new_tokens=8, batch_size=len(PROMPTS))
    assert batched == one_by_one
    assert all_at_once == one_by_one
    assert len(set(one_by_one)) > 1, "outputs should differ across prompts for the check to mean anything"


def test_order_is_restored_and_only_new_text_returned(tiny) -> None:
    model, tokenizer = tiny
    # Reference for one prompt: decode exactly the tokens after the prompt.
    ids = tokenizer(
        render_prompt(tokenizer, _convs(PROMPTS[:1])[0]), return_tensors="pt", add_special_tokens=False
    )
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    assert generate(model, tokenizer, _convs(PROMPTS[:1]), max_new_tokens=8, batch_size=1) == [expected]
    # Reversed input gives reversed output: sorting by length inside never leaks out.
    forward = generate(model, tokenizer, _convs(PROMPTS), max_new_tokens=8, batch_size=3)
    backward = generate(model, tokenizer, _convs(PROMPTS[::-1]), max_new_tokens=8, batch_size=3)
    assert backward == forward[::-1]
    for prompt, text in zip(PROMPTS, forward, strict=True):
        assert "<|im_start|>" not in text and prompt not in text


def test_peft_model_batched_agrees_and_train_mode_is_restored(tiny) -> None:
    from peft import LoraConfig, get_peft_model

    base, tokenizer = tiny
    torch.manual_seed(1)
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, lora_dropout=0.5
    )
    model = get_peft_model(base, lora)
    try:
        model.train()
        a = generate(model, tokenizer, _convs(PROMPTS), max_new_tokens=6, batch_size=1)
        b = generate(model, tokenizer, _convs(PROMPTS), max_new_tokens=6, batch_size=5)
        assert a == b
        assert model.training  # restored
        with model.disable_adapter():
            plain = generate(model, tokenizer, _convs(PROMPTS), max_new_tokens=6, batch_size=5)
        assert plain != a  # the adapter is applied
    finally:
        model.unload()  # leave the shared base model as it was


def test_chat_template_is_used(tiny) -> None:
    _, tokenizer = tiny
    text = render_prompt(tokenizer, [{"role": "user", "content": "Hi"}])
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def _rows() -> list[Row]:
    return [
        Row(
            id=f"r{i}",
            messages=[{"role": "user", "content": p}],
            response="Mix flour, water, yeast and salt." * (1 + i % 3),
            origin="benign",
            group="g",
        )
        for i, p in enumerate(PROMPTS[:6])
    ]


def test_response_loss_is_batch_invariant_and_response_only(tiny) -> None:
    from fedrai.data.formatting import tokenize_row

    model, tokenizer = tiny
    rows = _rows()
    loss_1 = response_loss(model, tokenizer, rows, batch_size=1)
    loss_4 = response_loss(model, tokenizer, rows, batch_size=4)
    assert math.isfinite(loss_1) and loss_1 > 0
    assert loss_4 == pytest.approx(loss_1, rel=1e-5)
    # One row: equals the model's own loss with -100 on the prompt.
    ex = tokenize_row(tokenizer, rows[0], 512)
    with torch.no_grad():
        ref = model(input_ids=torch.tensor([ex["input_ids"]]), labels=torch.tensor([ex["labels"]])).loss
    assert response_loss(model, tokenizer, rows[:1], batch_size=2) == pytest.approx(float(ref), rel=1e-5)
    assert math.isnan(response_loss(model, tokenizer, [], batch_size=2))
