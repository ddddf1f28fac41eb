"""Safety filter backends: input hygiene, the embedded head, Llama Guard, detoxify."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import Judged, SafetyFilter
from fedrai.safety.filters.embedded import FEATURES, EmbeddedFilter, Head, LinearHead, embed_features
from fedrai.safety.filters.llama_guard import (
    DEFAULT_CATEGORIES,
    LlamaGuardFilter,
    build_task,
    category_codes,
    parse_output,
)
from tests.safety_fakes import HashEncoder


class LengthFilter(SafetyFilter):
    """Unsafe probability = share of 'bomb' words; records what it was asked to judge."""

    name = "fake"

    def __init__(self, cfg: SafetyConfig) -> None:
        super().__init__(cfg)
        self.seen: list[tuple[str, str | None]] = []

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        self.seen += list(zip(prompts, responses, strict=True))
        return [
            Judged(1.0 if "bomb" in (r if r is not None else p) else 0.0)
            for p, r in zip(prompts, responses, strict=True)
        ]


# ------------------------------------------------------------------ input hygiene (all backends)
def test_bad_inputs_get_defined_verdicts_not_crashes() -> None:
    f = LengthFilter(SafetyConfig(max_chars=10, batch_size=2))
    v = f.score(
        ["q", None, "q", "q", 7, "q", "long prompt here"],
        ["ok", "ok", "", "   ", "ok", ["x"], "bomb" + "x" * 50],
    )
    assert [x.reason for x in v] == [
        "",
        "non_string_prompt",
        "empty_response",
        "empty_response",
        "non_string_prompt",
        "non_string_response",
        "",
    ]
    assert [x.invalid for x in v] == [False, True, True, True, True, True, False]
    assert all(x.unsafe_prob == 1.0 for x in v if x.invalid)  # fail closed
    assert v[6].truncated and v[6].unsafe_prob == 1.0
    assert all(len(p) <= 10 and len(r or "") <= 10 for p, r in f.seen)
    assert len(f.seen) == 2  # invalid rows never reach the backend


def test_modes_choose_what_is_judged() -> None:
    f = LengthFilter(SafetyConfig(mode="prompt"))
    v = f.score(["how to build a bomb", "bake bread"], [None, 5])  # responses ignored in prompt mode
    assert [x.unsafe_prob for x in v] == [1.0, 0.0] and f.seen[0][1] is None
    f = LengthFilter(SafetyConfig(mode="response"))
    v = f.score([None, 3], ["a bomb", "bread"])  # the prompt does not matter in response mode
    assert [x.unsafe_prob for x in v] == [1.0, 0.0]
    f = LengthFilter(SafetyConfig(mode="prompt"))
    assert f.score([""], [None])[0].reason == "empty_prompt"
    with pytest.raises(ValueError):
        f.score(["a", "b"], ["x"])


# ------------------------------------------------------------------ embedded head (fake encoder)
def _toy_head(enc: HashEncoder) -> Head:
    """A head fitted by least squares to tell 'bomb' answers from refusals and bread."""
    rng = np.random.default_rng(0)
    heads = {}
    for mode, kind in FEATURES.items():
        p = ["how do i make a bomb", "how do i bake bread"] * 8
        r = ["mix the explosive and the detonator bomb", "i can't help with that", "knead flour and bake"] * 6
        r = r[: len(p)]
        y = np.array(
            [
                1.0 if ("bomb" in rr or (mode == "prompt" and "bomb" in pp)) else 0.0
                for pp, rr in zip(p, r, strict=True)
            ]
        )
        x = embed_features(enc, kind, p, r if mode != "prompt" else p)
        coef, *_ = np.linalg.lstsq(x, (y - 0.5) * 20 + rng.normal(0, 1e-3, len(y)), rcond=None)
        heads[mode] = LinearHead(kind, coef.astype(np.float32), 0.0)
    return Head(heads, {"max_seq_length": 32})


def test_embedded_head_logic_with_fake_encoder(tmp_path: Path) -> None:
    enc = HashEncoder()
    head = _toy_head(enc)
    path = head.save(tmp_path / "h.npz")
    loaded = Head.load(path)
    assert set(loaded.heads) == set(FEATURES) and loaded.max_seq_length == 32
    for mode in FEATURES:
        f = EmbeddedFilter(SafetyConfig(mode=mode), encoder=enc, head=loaded)
        v = f.score(
            ["how do i make a bomb", "how do i bake bread"],
            ["mix the explosive and the detonator bomb", "knead flour and bake"],
        )
        assert v[0].unsafe_prob > 0.5 > v[1].unsafe_prob, mode
        assert v[0].category is None  # the embedded head has no categories


def test_features_shapes_and_errors() -> None:
    p = np.ones((3, 4), dtype=np.float32)
    assert embed_features(HashEncoder(8), FEATURES["response_in_context"], ["a"] * 3, ["b"] * 3).shape == (
        3,
        32,
    )
    from fedrai.safety.filters.embedded import features

    with pytest.raises(ValueError):
        features("p,r", p, None)
    with pytest.raises(ValueError):
        features("q", p, p)


def test_missing_head_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train-filter"):
        Head.load(tmp_path / "nope.npz")


def test_shipped_head_loads_with_every_mode() -> None:
    head = Head.load(None)
    assert set(head.heads) == {"prompt", "response", "response_in_context"}
    # hp, cr, hp*cr + p, r, p*r, |p-r|
    assert head.heads["response_in_context"].coef.shape == (3 + 384 * 4,)
    # float32: on CPUs without AVX512-BF16/AMX (this one) bf16 was ~8x slower than float32
    assert head.meta["encoder"] == "embedded:minilm-l6-v2" and head.encoder_dtype == "float32"


def _minilm_fetched() -> bool:
    from fedrai.assets import status

    return any(a["name"] == "minilm-l6-v2" and a["fetched"] == "yes" for a in status())


@pytest.mark.skipif(
    not _minilm_fetched(), reason="MiniLM asset not fetched (`fedrai assets fetch minilm-l6-v2`)"
)
def test_embedded_real_encoder_judges_in_context() -> None:
    from fedrai.safety.filters import build_filter

    f = build_filter(SafetyConfig(backend="embedded"))  # the factored default has its own test
    harmful = "Give step-by-step instructions for making a pipe bomb at home"
    v = f.score(
        [harmful, harmful, "How do I bake sourdough bread?"],
        [
            "Sure. First, get a steel pipe and two end caps. Fill it with black powder from fireworks, "
            "drill a hole for the fuse, and screw the caps on tightly.",
            "I'm sorry, but I can't help with that. Making explosives is dangerous and illegal.",
            "Mix flour, water and starter, let it rise overnight, shape the loaf and bake at 230 C.",
        ],
    )
    # compliance is flagged and ranks above both; the topic-naming refusal and benign are kept
    # (a refusal is safe data: it need not rank above a benign answer).
    assert v[0].flagged(0.5) and not v[1].flagged(0.5) and not v[2].flagged(0.5), v
    assert v[0].unsafe_prob > max(v[1].unsafe_prob, v[2].unsafe_prob)
    pf = build_filter(SafetyConfig(backend="embedded", mode="prompt"))
    pv = pf.score([harmful, "How do I bake sourdough bread?"])
    assert pv[0].flagged(0.5) and pv[0].unsafe_prob > pv[1].unsafe_prob


# ------------------------------------------------------------------ Llama Guard
def test_llama_guard_parser() -> None:
    codes = category_codes(DEFAULT_CATEGORIES)
    assert codes[0] == "S1" and codes[-1] == "S14"
    assert parse_output("safe", codes) == ("safe", [])
    assert parse_output("\n\nunsafe\nS1,S10", codes) == ("unsafe", ["S1", "S10"])
    assert parse_output("unsafe\ns9", codes) == ("unsafe", ["S9"])
    assert parse_output("unsafe", codes) == ("unsafe", [])
    for bad in ("", "maybe", "unsafe\nS99", "unsafe\nS1, my secret text", "Safe-ish"):
        assert parse_output(bad, codes) is None, bad
    with pytest.raises(ValueError):
        category_codes(["no code here"])


def test_llama_guard_prompt_format_and_custom_categories() -> None:
    task = build_task("hi", "hello", DEFAULT_CATEGORIES)
    assert "S14: Code Interpreter Abuse." in task and "Agent: hello" in task
    assert "ONLY THE LAST Agent message" in task
    assert "ONLY THE LAST User message" in build_task("hi", None, ["C1: Cats."])


def test_llama_guard_tiny_model_fails_closed(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    cfg = SafetyConfig(backend="llama_guard", llama_guard_categories=["C1: Cats.", "C2: Dogs."])
    f = LlamaGuardFilter(cfg, model=model, tokenizer=tok, max_new_tokens=4)
    rendered = f.render("How do I pet a cat?", "Gently.")
    assert rendered.startswith("<|im_start|>user\n") and "C2: Dogs." in rendered  # its chat template
    v = f.score(["How do I pet a cat?", "x"], ["Gently.", ""])
    assert (
        v[0].unparseable and v[0].unsafe_prob == 1.0 and v[0].reason == "unparseable_output"
    )  # random model
    assert v[1].invalid and v[1].reason == "empty_response"
    f_open = LlamaGuardFilter(cfg.model_copy(update={"on_unparseable": "safe"}), model=model, tokenizer=tok)
    assert f_open.score(["q"], ["a"])[0].unsafe_prob == 0.0


def test_llama_guard_probability_from_first_token(tiny_model_dir: Path) -> None:
    """Script the model's output to check the probability and category plumbing."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    f = LlamaGuardFilter(SafetyConfig(backend="llama_guard"), model=model, tokenizer=tok)
    scripts = ["unsafe\nS1,S10", "safe"]

    class Out:
        def __init__(self, n: int, width: int) -> None:
            first = torch.full((n, len(tok)), -10.0)
            first[0, f.unsafe_id], first[0, f.safe_id] = 2.0, 0.0  # p_unsafe = sigmoid(2)
            first[1, f.unsafe_id], first[1, f.safe_id] = 0.0, 3.0
            self.scores = [first]
            gen = [tok.encode(s, add_special_tokens=False) for s in scripts]
            m = max(map(len, gen))
            seqs = [[tok.pad_token_id] * width + g + [tok.pad_token_id] * (m - len(g)) for g in gen]
            self.sequences = torch.tensor(seqs)

    f.model.generate = lambda **kw: Out(kw["input_ids"].shape[0], kw["input_ids"].shape[1])  # type: ignore[method-assign]
    v = f.score(["how to hurt someone", "hello"], ["do X", "hi"])
    assert v[0].unsafe_prob == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-4)
    assert v[0].category == "S1" and v[0].categories == ("S1", "S10")
    assert v[1].unsafe_prob < 0.1 and v[1].category is None


# ------------------------------------------------------------------ detoxify
def _tiny_detoxify(tmp_path: Path, toxic_bias: float) -> tuple[Path, Path]:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "are", "an", "idiot", "hello", "friend"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(str(tmp_path))
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=6,
        max_position_embeddings=64,
    )
    config.save_pretrained(str(tmp_path))
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([toxic_bias, -5.0, -5.0, -5.0, -5.0, -5.0]))
    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    ckpt = {
        "config": {
            "arch": {
                "args": {
                    "model_type": str(tmp_path),
                    "model_name": "BertForSequenceClassification",
                    "tokenizer_name": "BertTokenizer",
                    "num_classes": 6,
                }
            },
            "dataset": {"args": {"classes": classes}},
        },
        "state_dict": model.state_dict(),
    }
    torch.save(ckpt, tmp_path / "tiny.ckpt")
    return tmp_path / "tiny.ckpt", tmp_path


def test_detoxify_offline_checkpoint(tmp_path: Path) -> None:
    from fedrai.safety.filters import build_filter

    ckpt, cfg_dir = _tiny_detoxify(tmp_path, toxic_bias=4.0)
    cfg = SafetyConfig(backend="detoxify", detoxify_checkpoint=str(ckpt), detoxify_config_dir=str(cfg_dir))
    f = build_filter(cfg)
    v = f.score(["q", "q", "q"], ["you are an idiot", "hello friend", None])
    assert v[0].unsafe_prob > 0.9 and v[0].category == "toxicity"  # renamed by detoxify
    assert v[2].invalid and v[2].reason == "non_string_response"
    single = f.score(["q"], ["hello"])  # detoxify squeezes one text to floats
    assert single[0].unsafe_prob > 0.9
    low = build_filter(cfg.model_copy(update={"threshold": 0.99}))
    assert low.score(["q"], ["hi"])[0].category is None


def test_detoxify_needs_config_dir_with_checkpoint(tmp_path: Path) -> None:
    from fedrai.safety.filters.detoxify import DetoxifyFilter

    with pytest.raises(ValueError, match="detoxify_config_dir"):
        DetoxifyFilter(SafetyConfig(backend="detoxify", detoxify_checkpoint=str(tmp_path / "x.ckpt")))


def test_training_refusal_parts_never_repeat_test_parts() -> None:
    """Refusal wording is a generalisation test: no test template part is used in train/val."""
    from fedrai.safety.refusal_templates import REFUSAL_PARTS_V2, refusal_test_parts, refusal_train_parts

    test = {_norm_text(x) for x in refusal_test_parts()}
    train = [_norm_text(x) for x in refusal_train_parts()]
    assert test and train and not test & set(train)
    assert not any(t in x for t in test for x in train if len(t) > 20)
    val = {_norm_text(x) for pool in REFUSAL_PARTS_V2["val"].values() for x in pool if x.strip()}
    trn = {_norm_text(x) for pool in REFUSAL_PARTS_V2["train"].values() for x in pool if x.strip()}
    assert val and not val & trn


def _norm_text(x: str) -> str:
    return " ".join(x.lower().split())


def test_stacked_head_round_trip(tmp_path: Path) -> None:
    from fedrai.safety.filters.embedded import STACKED

    enc = HashEncoder(8)
    rng = np.random.default_rng(1)
    proj = {"hp": rng.normal(size=9).astype(np.float32), "cr": rng.normal(size=9).astype(np.float32)}
    x = embed_features(enc, STACKED, ["a", "b"], ["c", "d"], proj)
    width = 3 + 8 * (len(STACKED.split(",")) - 3)  # hp, cr, hp*cr + one 8-d block per embedding feature
    assert x.shape == (2, width)
    head = LinearHead(STACKED, rng.normal(size=width).astype(np.float32), 0.1, proj)
    base = _toy_head(enc)
    path = Head({**base.heads, "response_in_context": head}, base.meta).save(tmp_path / "s.npz")
    loaded = Head.load(path).heads["response_in_context"]
    assert set(loaded.proj) == {"hp", "cr"}
    np.testing.assert_allclose(loaded.predict_proba(x), head.predict_proba(x), rtol=1e-5)
    with pytest.raises(ValueError, match="projection"):
        embed_features(enc, STACKED, ["a"], ["c"])


def test_shipped_head_is_stacked_and_loads() -> None:
    head = Head.load()
    ric = head.heads["response_in_context"]
    assert set(ric.proj) == {"hp", "cr"} and ric.features.startswith("hp,cr")


# ------------------------------------------------------------------ encoder config, gated features
def test_gated_response_feature_and_products() -> None:
    from fedrai.safety.filters.embedded import features

    rng = np.random.default_rng(2)
    p, r = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    proj = {"hp": rng.normal(size=5).astype(np.float32), "cr": rng.normal(size=5).astype(np.float32)}
    x = features("hp,cr,hp*cr,p*r,|p-r|,hp*r", p, r, proj)
    hp = p @ proj["hp"][:-1] + proj["hp"][-1]
    cr = r @ proj["cr"][:-1] + proj["cr"][-1]
    assert x.shape == (3, 3 + 4 * 3)
    np.testing.assert_allclose(x[:, 2], hp * cr, rtol=1e-5)
    np.testing.assert_allclose(x[:, 11:], hp[:, None] * r, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown feature"):
        features("p*q", p, r, proj)


def test_head_records_encoder_dtype_and_filter_warns_on_mismatch(tmp_path: Path) -> None:
    enc = HashEncoder()
    head = _toy_head(enc)
    assert head.encoder_dtype == "float32"  # heads from before the field: float32
    head.meta["encoder_dtype"] = "bfloat16"
    loaded = Head.load(head.save(tmp_path / "h.npz"))
    assert loaded.encoder_dtype == "bfloat16"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmbeddedFilter(SafetyConfig(), encoder=enc, head=loaded)  # "head": no warning
        EmbeddedFilter(SafetyConfig(encoder_dtype="bfloat16"), encoder=enc, head=loaded)
    with pytest.warns(UserWarning, match="trained on bfloat16 embeddings"):
        EmbeddedFilter(SafetyConfig(encoder_dtype="float32"), encoder=enc, head=loaded)


def test_sentence_encoder_rejects_unknown_dtype() -> None:
    from fedrai.safety.filters.embedded import SentenceEncoder

    with pytest.raises(ValueError, match="encoder dtype"):
        SentenceEncoder("/nonexistent", dtype="int4")


def test_encoder_cache_tags_keep_dtypes_apart(tmp_path: Path) -> None:
    from fedrai.safety.embedding_cache import CachedEncoder, encoder_tag

    assert encoder_tag("e", 128, "float32") == "e|128"  # caches written before the dtype existed
    assert encoder_tag("e", 128, "bfloat16") != encoder_tag("e", 128, "float32")
    path = tmp_path / "c.npz"
    first = CachedEncoder(HashEncoder(8), path, encoder_tag("e", 128, "float32"))
    first.encode(["a b", "c"])
    first.save()
    assert len(CachedEncoder(HashEncoder(8), path, encoder_tag("e", 128, "float32")).cache) == 2
    assert not CachedEncoder(HashEncoder(8), path, encoder_tag("e", 128, "bfloat16")).cache


@pytest.mark.skipif(
    not _minilm_fetched(), reason="MiniLM asset not fetched (`fedrai assets fetch minilm-l6-v2`)"
)
def test_bfloat16_encoder_stays_close_to_float32() -> None:
    from fedrai.safety.filters.embedded import SentenceEncoder

    texts = ["How do I bake sourdough bread?", "I'm sorry, but I can't help with that.", "x" * 2000]
    a = SentenceEncoder("embedded:minilm-l6-v2", dtype="float32").encode(texts + texts[:1])
    b = SentenceEncoder("embedded:minilm-l6-v2", dtype="bfloat16").encode(texts)
    assert a.dtype == b.dtype == np.float32 and a.shape == (4, 384) and b.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(a[:3] * b, axis=1)) > 0.99


def test_detoxify_checkpoint_with_code_is_refused_unrun(tmp_path: Path) -> None:
    import torch

    from fedrai.safety.filters.detoxify import DetoxifyFilter
    from tests.test_checkpoint import Payload

    ckpt, cfg_dir = _tiny_detoxify(tmp_path, toxic_bias=4.0)
    blob = torch.load(ckpt, weights_only=True)
    blob["config"]["payload"] = Payload(tmp_path / "pwned")
    torch.save(blob, ckpt)
    cfg = SafetyConfig(backend="detoxify", detoxify_checkpoint=str(ckpt), detoxify_config_dir=str(cfg_dir))
    with pytest.raises(ValueError, match="refused.*could run code"):
        DetoxifyFilter(cfg)
    assert not (tmp_path / "pwned").exists()
