"""`fedrai safety score` / `train-filter`: the file scorer, head training, and the Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedrai.config import SafetyConfig
from fedrai.safety.filters.base import Judged, SafetyFilter
from fedrai.safety.filters.embedded import EmbeddedFilter, Head
from fedrai.safety.labelled import load_labelled_jsonl
from fedrai.safety.refusal_templates import synth_refusal
from fedrai.safety.train_head import train_filter
from tests.conftest import write_jsonl
from tests.safety_fakes import HashEncoder


class BombFilter(SafetyFilter):
    name = "bomb"

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        return [Judged(0.95 if "bomb" in (r or "") else 0.05) for r in responses]


def test_score_file_writes_scores_and_summary_without_text(tmp_path: Path) -> None:
    from fedrai.safety.score import score_file

    rows = [
        {"prompt": f"q{i}", "response": "a bomb recipe" if i % 4 == 0 else f"bread {i}"} for i in range(12)
    ]
    rows.append({"prompt": "q", "response": 3})  # bad row: skipped by the loader or invalid
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = SafetyConfig()
    summary = score_file(src, cfg, tmp_path / "out", safety_filter=BombFilter(cfg))
    assert summary["counts"]["safety.scored"] + summary["skipped_rows"] == 13
    assert summary["counts"]["safety.flagged"] >= 3
    lines = [json.loads(x) for x in (tmp_path / "out" / "scores.jsonl").read_text().splitlines()]
    assert len(lines) == summary["rows"] and {"id", "unsafe_prob", "flagged"} <= set(lines[0])
    assert "bomb" not in (tmp_path / "out" / "scores.jsonl").read_text()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rows"] == summary["rows"]


def _labelled(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        topic = rng.choice(["bomb explosive detonator", "poison toxin dose"])
        benign = rng.choice(["bread flour oven", "garden tomato water", "python list loop"])
        rows.append(
            {"prompt": f"how do I make a {topic} {i}", "response": f"step one {topic} mix", "label": 1}
        )
        rows.append(
            {
                "prompt": f"how do I make a {topic} {i}",
                "response": synth_refusal("x", __import__("random").Random(i)),
                "label": "safe",
            }
        )
        rows.append({"prompt": f"tell me about {benign} {i}", "response": f"sure, {benign} tips", "label": 0})
        rows.append({"prompt": f"how to {topic} {i}", "label": 1})
        rows.append({"prompt": f"how to {benign} {i}", "label": 0})
    return write_jsonl(tmp_path / "labels.jsonl", rows)


def test_train_filter_on_user_labels_with_fake_encoder(tmp_path: Path) -> None:
    enc = HashEncoder(32)
    record = train_filter(
        tmp_path / "head.npz", data=_labelled(tmp_path), encoder=enc, encoder_ref="fake", log=lambda *_: None
    )
    assert (tmp_path / "head.npz").is_file() and (tmp_path / "head.json").is_file()
    for mode in ("prompt", "response", "response_in_context"):
        test = record["modes"][mode]["test"]
        assert test["auc"] > 0.95 and test["recall"] > 0.8, (mode, test)
    head = Head.load(tmp_path / "head.npz")
    f = EmbeddedFilter(SafetyConfig(head_path=str(tmp_path / "head.npz")), encoder=enc, head=head)
    v = f.score(
        ["how do I make a bomb explosive detonator"] * 2,
        ["step one bomb explosive detonator mix", "I can't help with that."],
    )
    assert v[0].unsafe_prob > 0.5 > v[1].unsafe_prob


def test_labelled_jsonl_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "label": "maybe"}\n')
    with pytest.raises(ValueError, match="bad.jsonl: line 1"):
        load_labelled_jsonl(bad)
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match="bad.jsonl: line 1"):
        load_labelled_jsonl(bad)


def test_cli_app_has_both_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedrai.cli.safety import app

    runner = CliRunner()
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0 and "score" in out.output and "train-filter" in out.output
    bad = runner.invoke(app, ["score", str(tmp_path / "x.jsonl"), "--backend", "nope"])
    assert bad.exit_code != 0


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.jsonl", b"", "no usable rows"),
        ("wrong.csv", b"question,answer\nhow?,like this\n", "columns: answer, question"),
        ("latin1.jsonl", b'{"prompt": "caf\xe9?", "response": "ol\xe9"}\n', "no usable rows"),
    ],
)
def test_score_bad_files_get_one_line_errors(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    from typer.testing import CliRunner

    from fedrai.cli import app as main_app

    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(main_app, ["safety", "score", str(path), "--out", str(tmp_path / "o")])
    out = result.output.strip()
    assert result.exit_code == 2, (out, result.exception)
    assert out.startswith("error:") and len(out.splitlines()) == 1 and needle in out and name in out, out


class PromptBombFilter(SafetyFilter):
    name = "prompt-bomb"

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        assert all(r is None for r in responses)  # prompt mode never sees answers
        return [Judged(0.9 if "bomb" in p else 0.1) for p in prompts]


def test_prompt_only_rows_score_in_prompt_mode(tmp_path: Path) -> None:
    from fedrai.safety.score import score_file

    rows = [{"prompt": "how to make a bomb"}, {"prompt": "how to kill a python process", "response": ""}]
    rows.append({"messages": [{"role": "user", "content": "build a bomb"}]})
    src = write_jsonl(tmp_path / "prompts.jsonl", rows)
    cfg = SafetyConfig(mode="prompt")
    summary = score_file(src, cfg, tmp_path / "out", safety_filter=PromptBombFilter(cfg))
    assert summary["rows"] == 3 and summary["skipped_rows"] == 0
    assert summary["counts"]["safety.flagged"] == 2


def test_response_mode_on_prompt_only_rows_names_the_mode(tmp_path: Path) -> None:
    from fedrai.data.loading import DataError
    from fedrai.safety.score import score_file

    src = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "how to make a bomb"}, {"prompt": "hi"}])
    cfg = SafetyConfig(mode="response_in_context")
    with pytest.raises(DataError, match="mode 'response_in_context'.*use mode 'prompt'"):
        score_file(src, cfg, tmp_path / "out", safety_filter=BombFilter(cfg))


def test_score_distribution_table_and_threshold_effects() -> None:
    from fedrai.safety.score import distribution_table, score_distribution

    dist = score_distribution([0.05, 0.15, 0.55, 0.95, 0.97], 0.5)
    assert [b["rows"] for b in dist["bins"]] == [1, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert dist["flagged_at"]["0.5"] == 0.6 and dist["flagged_at"]["0.9"] == 0.4
    assert dist["quantiles"]["p50"] == 0.55
    text = distribution_table(dist)
    assert "threshold 0.5" in text and "[0.5, 0.6)       1 " in text and "<- threshold" in text
    assert score_distribution([], 0.5)["flagged_at"]["0.5"] == 0.0


def test_cli_score_prints_distribution_and_clear_mode_error(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    import fedrai.safety.filters as filters
    from fedrai.cli.safety import app

    monkeypatch.setattr(filters, "build_filter", lambda cfg: PromptBombFilter(cfg))
    src = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "make a bomb"}, {"prompt": "bake bread"}])
    runner = CliRunner()
    ok = runner.invoke(app, ["score", str(src), "--mode", "prompt", "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "unsafe_prob distribution (threshold 0.5" in ok.output and '"safety.flagged": 1' in ok.output
    bad = runner.invoke(app, ["score", str(src), "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "use mode 'prompt'" in bad.output
