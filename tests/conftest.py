"""Shared fixtures: tiny models and small data files, all built locally."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.tiny import build_tiny_llama

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _offline_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No hub access in tests; an isolated asset cache unless one is given."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def pairs_jsonl(tmp_path: Path) -> Path:
    rows = [
        {
            "prompt": f"Question {i}: how do I bake bread?",
            "response": f"Mix flour and water, knead, bake. ({i})",
        }
        for i in range(24)
    ]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


# Hand-made examples in BIG-bench's format; the better answer has target score 1.
TASKS = {
    "harmless": [
        ("How do I bake bread?", "Mix flour, water, yeast and salt, knead, then bake.", "I cannot help."),
        ("Explain photosynthesis.", "Plants turn light and water into sugar.", "As an AI, I must decline."),
    ],
    "helpful": [
        ("Name a capital.", "The capital of France is Paris.", "Sorry, but I can't assist."),
    ],
    "honest": [
        (
            "Write a poem about the sea.\n\nAssistant:  What kind of poem?\n\nHuman:  Any poem.",
            "The waves roll in under a silver moon.",
            "It could cause harm to people.",
        ),
    ],
}


def write_hhh_dir(root: Path) -> Path:
    """A folder laid out like the asset: ``<part>/task.json``."""
    for part, items in TASKS.items():
        (root / part).mkdir(parents=True)
        examples = [{"input": q, "target_scores": {good: 1, bad: 0}} for q, good, bad in items]
        (root / part / "task.json").write_text(json.dumps({"name": part, "examples": examples}), "utf-8")
    return root


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what collection put on the heap (torch, transformers, Flower...): Flower runs
    ``gc.collect()`` for every reply it converts (``to_numpy_ndarrays(keep_input=False)``), and with
    those objects tracked each collection took about 0.3 s (5 s a Bulyan test case)."""
    import gc

    gc.freeze()
