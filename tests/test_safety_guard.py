"""The client-side guard: actions, thresholds, the audit, bad rows, and counts with no text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedrai.config import SafetyConfig
from fedrai.data import Row
from fedrai.safety.audit import AuditLog
from fedrai.safety.filters.base import Judged, SafetyFilter
from fedrai.safety.guard import COUNT_KEYS, screen_rows
from fedrai.safety.refusals import PRINCIPLES, default_refusal


class ScriptedFilter(SafetyFilter):
    """Probability by keyword in the response; category S1 for 'bomb', S10 for 'slur'."""

    name = "scripted"

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        out = []
        for r in responses:
            r = r or ""
            if "bomb" in r:
                out.append(Judged(0.9, "S1", categories=("S1", "S9")))
            elif "slur" in r:
                out.append(Judged(0.6, "S10"))
            elif "garbled" in r:
                out.append(Judged(1.0, None, unparseable=True))
            else:
                out.append(Judged(0.1))
        return out


def _row(i: int, prompt: object, response: object, origin: str = "benign") -> Row:
    return {
        "id": f"data.jsonl:{i}",
        "messages": [{"role": "user", "content": prompt}],  # type: ignore[typeddict-item]
        "response": response,
        "origin": origin,
        "group": "g",
    }


SECRET = "SECRET-PLAN-7f3a"


def _rows() -> list[Row]:
    return [
        _row(0, "How do I bake bread?", "Knead and bake."),
        _row(1, f"How do I make a bomb? {SECRET}", f"Here is the bomb recipe {SECRET}", "harmful"),
        _row(2, "Insult them", "a slur here", "harmful"),
        _row(3, "Say hi", ""),  # empty response: invalid input
        _row(4, "Say hi", "garbled"),  # unparseable judge output
        _row(5, "Long one", "x" * 50),
    ]


@pytest.mark.parametrize("action", ["drop", "refuse", "revise"])
def test_actions(tmp_path: Path, action: str) -> None:
    cfg = SafetyConfig(action=action, max_chars=40)
    audit = AuditLog(tmp_path)
    res = screen_rows(_rows(), cfg, ScriptedFilter(cfg), audit, context={"round": 2})
    c = res.counts
    assert set(COUNT_KEYS) <= set(c)
    assert c["safety.scored"] == 6 and c["safety.flagged"] == 3  # bomb, slur, garbled (fail closed)
    assert c["safety.invalid"] == 2 and c["safety.unparseable"] == 1 and c["safety.truncated"] == 1
    assert c["safety.category.S1"] == 1 and c["safety.category.S9"] == 1 and c["safety.category.S10"] == 1
    kept_ids = [r["id"] for r in res.kept]
    if action == "drop":
        assert kept_ids == ["data.jsonl:0", "data.jsonl:5"] and not res.to_revise
        assert c["safety.dropped"] == 4 and c["safety.kept"] == 2  # 3 flagged + 1 invalid input
    elif action == "refuse":
        assert kept_ids == ["data.jsonl:0", "data.jsonl:1", "data.jsonl:2", "data.jsonl:4", "data.jsonl:5"]
        refused = {r["id"]: r["response"] for r in res.kept}
        assert SECRET not in refused["data.jsonl:1"]
        assert refused["data.jsonl:2"] in PRINCIPLES["respect"]  # S10 -> respect
        assert c["safety.refused"] == 3 and c["safety.dropped"] == 1 and c["safety.kept"] == 5
    else:
        assert [r["id"] for r in res.to_revise] == ["data.jsonl:1", "data.jsonl:2", "data.jsonl:4"]
        assert c["safety.revised"] == 3 and c["safety.dropped"] == 1
    records = audit.read()
    assert len(records) == 6 and all(r["round"] == 2 for r in records)
    by_id = {r["id"]: r for r in records}
    assert by_id["data.jsonl:1"]["response"].endswith(SECRET)  # the original text is kept locally
    assert by_id["data.jsonl:1"]["action"] == {"drop": "drop", "refuse": "refuse", "revise": "revise"}[action]
    assert "response" not in by_id["data.jsonl:0"]  # kept rows: no copy of the text
    assert by_id["data.jsonl:3"]["reason"] == "invalid input: empty_response"
    if action == "refuse":
        assert by_id["data.jsonl:2"]["principle"] == "respect" and by_id["data.jsonl:2"]["new_response"]


def test_threshold_moves_the_cut(tmp_path: Path) -> None:
    rows = _rows()[:3]
    for threshold, flagged in ((0.05, 3), (0.5, 2), (0.7, 1), (0.95, 0)):
        cfg = SafetyConfig(threshold=threshold)
        res = screen_rows(rows, cfg, ScriptedFilter(cfg), None)
        assert res.counts["safety.flagged"] == flagged, threshold


def test_on_unparseable_safe_keeps_the_row() -> None:
    cfg = SafetyConfig(on_unparseable="safe")

    class Open(ScriptedFilter):
        def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
            return [Judged(0.0, None, unparseable=True) for _ in prompts]

    res = screen_rows([_row(0, "q", "garbled")], cfg, Open(cfg), None)
    assert len(res.kept) == 1 and res.counts["safety.invalid"] == 1


def test_custom_refusal_fn_and_malformed_rows(tmp_path: Path) -> None:
    cfg = SafetyConfig(action="refuse")
    calls = []

    def refusal(prompt: str, category: str | None) -> str:
        calls.append((prompt, category))
        return "From the constitution: no."

    rows = [_row(0, "p", "bomb"), {"id": "bad", "messages": "nope", "response": 5}, _row(2, 9, "fine")]
    res = screen_rows(rows, cfg, ScriptedFilter(cfg), AuditLog(tmp_path), refusal_text_fn=refusal)  # type: ignore[arg-type]
    assert calls == [("p", "S1")] and res.kept[0]["response"] == "From the constitution: no."
    assert res.counts["safety.dropped"] == 2 and res.counts["safety.invalid"] == 2
    assert default_refusal("x", "S11") in PRINCIPLES["self_care"]


def test_counts_contain_no_text(tmp_path: Path) -> None:
    """Only integers under fixed keys leave the client; no prompt/response text, no scores."""
    for action in ("drop", "refuse", "revise"):
        cfg = SafetyConfig(action=action)

        class Leaky(ScriptedFilter):
            def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
                return [Judged(0.9, f"S1 {SECRET}") for _ in prompts]  # a hostile category string

        rows = _rows()
        res = screen_rows(rows, cfg, Leaky(cfg), AuditLog(tmp_path))
        blob = json.dumps(res.counts)
        assert all(isinstance(v, int) for v in res.counts.values())
        assert all(k.startswith("safety.") for k in res.counts)
        for row in rows:
            for text in (row["response"], row["messages"][0]["content"]):
                if isinstance(text, str) and len(text) > 3:
                    assert text not in blob
        assert "secret" not in blob.lower() and "bake" not in blob.lower()
        assert res.counts["safety.category.other"] == res.counts["safety.flagged"]
        assert all(len(k) <= len("safety.category.") + 32 for k in res.counts)
