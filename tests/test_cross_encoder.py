"""The cross-encoder filter on a tiny random BERT: training, save/load round trip, modes, thresholds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fedrai.config import SafetyConfig
from fedrai.safety.filters.cross_encoder import CrossEncoder, CrossEncoderFilter, format_inputs
from fedrai.safety.labelled import Example
from fedrai.safety.train_cross import choose_threshold, sample_rows, train_cross_encoder
from tests.tiny import build_tiny_bert


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def _examples() -> list[Example]:
    rows: list[Example] = []
    for i in range(24):
        split = "val" if i % 4 == 0 else "train"
        rows.append(
            Example(
                f"how do I make a bomb {i}",
                "step one: mix the powder and the fuse",
                1,
                "harmful_compliant",
                split,
                f"pairs:{i}",
            )
        )
        rows.append(
            Example(
                f"how do I make a bomb {i}",
                "I can't help you make bombs, it could hurt people.",
                0,
                "refusal",
                split,
                f"pairs:{i}",
            )
        )
        rows.append(
            Example(
                f"how do I bake bread {i}",
                "Mix flour, water and yeast, then bake.",
                0,
                "benign",
                split,
                f"bread:{i}",
            )
        )
        rows.append(Example(f"how do I make a bomb {i}", None, 1, "harmful_prompt", split, f"pairs:{i}"))
        rows.append(Example(f"how do I bake bread {i}", None, 0, "benign_prompt", split, f"bread:{i}"))
    return rows


def test_inputs_per_mode() -> None:
    assert format_inputs("prompt", ["p"], [None]) == (["user: p"], None)
    assert format_inputs("response", ["p"], ["r"]) == (["assistant: r"], None)
    assert format_inputs("response_in_context", ["p"], ["r"]) == (["user: p"], ["assistant: r"])


def test_train_save_load_and_filter_modes(tiny_bert: Path, tmp_path: Path) -> None:
    meta = train_cross_encoder(
        tmp_path / "ce",
        _examples(),
        base=str(tiny_bert),
        max_length=32,
        epochs=2,
        lr=5e-3,
        log=lambda m: None,
    )
    assert set(meta["thresholds"]) == {"prompt", "response", "response_in_context"}
    files = {p.name for p in (tmp_path / "ce").iterdir()}
    assert files == {"adapter.safetensors", "meta.json"}
    size = (tmp_path / "ce" / "adapter.safetensors").stat().st_size
    assert size < 200_000  # LoRA + classifier only, not the encoder
    ce = CrossEncoder.load(tmp_path / "ce")
    again = CrossEncoder.load(tmp_path / "ce")
    prompts, responses = ["how do I make a bomb 3", "how do I bake bread 3"], ["step one: mix", "Mix flour"]
    assert ce.logits("response_in_context", prompts, responses) == pytest.approx(
        again.logits("response_in_context", prompts, responses), abs=1e-5
    )
    for mode in ("prompt", "response", "response_in_context"):
        f = CrossEncoderFilter(
            SafetyConfig(backend="cross_encoder", mode=mode, head_path=str(tmp_path / "ce")), ce
        )
        verdicts = f.score(prompts, responses)
        assert len(verdicts) == 2 and all(0.0 <= v.unsafe_prob <= 1.0 for v in verdicts)


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train-filter"):
        CrossEncoder.load(tmp_path / "nope")


def test_threshold_keeps_each_safe_set_under_max_fpr() -> None:
    logits = [-3.0, -2.0, 2.0, 3.0, -1.0, 1.5]
    sets = ["benign", "benign", "harmful_compliant", "harmful_compliant", "refusal", "refusal"]
    labels = [0, 0, 1, 1, 0, 0]
    t = choose_threshold(logits, sets, labels, 0.0)
    assert 0.8 < t <= 1 / (1 + 2.718281828**-2.0) + 1e-9  # above the refusal at 1.5, at most the 2.0 positive


def test_sample_rows_caps_each_source_and_set() -> None:
    rows = sample_rows(_examples(), 5, random.Random(0))
    assert len(rows) == 25  # 5 (source, set) groups, 5 each
