"""The memory-saving loss (logits only at labelled positions) equals the library's loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fedrai.config import LoraSettings, ModelConfig
from fedrai.data.formatting import collate, tokenize_row
from fedrai.model import load_model
from fedrai.training import response_loss


@pytest.mark.parametrize(("checkpointing", "chunk"), [(False, 10_000), (True, 7)])
def test_response_loss_equals_the_library_loss_and_gradients(
    tiny_model_dir: Path, checkpointing: bool, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fedrai.training.LOSS_CHUNK", chunk)  # 7: several chunks, recomputed in backward
    cfg = ModelConfig(
        name_or_path=str(tiny_model_dir), max_seq_length=64, gradient_checkpointing=checkpointing
    )
    model, tok = load_model(cfg, LoraSettings(r=4, alpha=8, dropout=0.0), seed=0)
    rows = [
        {
            "messages": [{"role": "user", "content": f"How do I bake loaf {i}?"}],
            "response": "Knead " * (i + 1),
        }
        for i in range(3)
    ]
    inputs = collate([tokenize_row(tok, r, 64) for r in rows], tok.pad_token_id)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        return [g.clone() for g in torch.autograd.grad(loss, params)]

    ours = response_loss(model, inputs)
    theirs = model(**inputs).loss
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    for a, b in zip(grads(response_loss(model, inputs)), grads(model(**inputs).loss), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
