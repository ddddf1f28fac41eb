"""`fedrai safety audit RUN_DIR`: counts per client, texts only on request; `score` does not act."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fedrai.cli.safety import app
from fedrai.config import SafetyConfig
from fedrai.safety.audit import AuditLog
from fedrai.safety.filters.base import Judged, SafetyFilter
from fedrai.safety.guard import screen_rows
from tests.conftest import write_jsonl


class BombFilter(SafetyFilter):
    name = "bomb"

    def _judge(self, prompts: list[str], responses: list[str | None]) -> list[Judged]:
        return [
            Judged(0.95, category="S9", categories=("S9",)) if "bomb" in (r or "") else Judged(0.05)
            for r in responses
        ]


def _rows(n: int, bombs: int) -> list[dict]:
    return [
        {
            "id": f"r{i}",
            "messages": [{"role": "user", "content": f"q{i}"}],
            "response": "a bomb recipe SECRET" if i < bombs else f"bread {i}",
            "origin": "benign",
        }
        for i in range(n)
    ]


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    drop = SafetyConfig(enabled=True, action="drop")
    screen_rows(_rows(10, 3), drop, BombFilter(drop), AuditLog(run / "clients" / "client-0"))
    revise = SafetyConfig(enabled=True, action="revise")
    audit = AuditLog(run / "clients" / "client-1")
    screen_rows(_rows(8, 2), revise, BombFilter(revise), audit)
    audit.write(
        [
            {"event": "cai.try", "row_id": "r0", "prompt": "q0", "revision": "x", "accepted": True},
            {
                "event": "cai.outcome",
                "row_id": "r0",
                "prompt": "q0",
                "original": "a bomb recipe SECRET",
                "final": "I will not help.",
                "status": "revised",
                "principles": ["harm"],
            },
            {
                "event": "cai.outcome",
                "row_id": "r1",
                "prompt": "q1",
                "original": "a bomb recipe SECRET",
                "final": "No.",
                "status": "refusal",
                "principles": ["harm", "law"],
            },
        ]
    )
    return run


def test_audit_counts_per_client_without_texts(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    result = CliRunner().invoke(app, ["audit", str(run), "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    assert "SECRET" not in result.output and "bread" not in result.output
    lines = result.output.splitlines()
    assert "client-0: screened 10, kept 7, dropped 3, refused 0, sent to CAI 0 (3 acted on)" in lines
    assert "client-1: screened 8, kept 6, dropped 0, refused 0, sent to CAI 2 (2 acted on)" in lines
    assert "  reasons: score >= 0.5 3" in lines and "  categories: S9 3" in lines
    assert "  CAI outcomes: revised 1, refusal 1 (1 revision tries)" in lines
    assert "  principles: harm 2, law 1" in lines
    data = json.loads((tmp_path / "a.json").read_text())
    assert [d["client"] for d in data] == ["client-0", "client-1"]
    assert data[0]["actions"] == {"keep": 7, "drop": 3} and "texts" not in data[0]


def test_audit_shows_texts_only_when_asked(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    result = CliRunner().invoke(app, ["audit", str(run / "clients" / "client-1"), "--show-texts"])
    assert result.exit_code == 0, result.output
    texts = [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    assert {t.get("action") or t.get("cai") for t in texts} == {"revise", "revised", "refusal"}
    assert any("SECRET" in (t.get("response") or t.get("original") or "") for t in texts)
    assert not any("bread" in json.dumps(t) for t in texts)  # kept rows are not acted on


def test_audit_names_the_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", str(tmp_path)])
    assert result.exit_code == 2 and "no safety_audit.jsonl under clients/*/" in result.output
    bad = tmp_path / "clients" / "client-0" / "safety_audit.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"action": "drop"}\nnot json\n')
    result = CliRunner().invoke(app, ["audit", str(tmp_path)])
    assert result.exit_code == 2 and "safety_audit.jsonl:2: not valid JSON" in result.output


def test_score_summary_says_flagged_not_kept_or_dropped(tmp_path: Path, monkeypatch) -> None:
    import fedrai.safety.filters as filters

    monkeypatch.setattr(filters, "build_filter", lambda cfg: BombFilter(cfg))
    src = write_jsonl(
        tmp_path / "d.jsonl",
        [{"prompt": f"q{i}", "response": "bomb" if i < 2 else "bread"} for i in range(6)],
    )
    result = CliRunner().invoke(app, ["score", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["counts"]["safety.flagged"] == 2 and summary["counts"]["safety.not_flagged"] == 4
    assert not {"safety.kept", "safety.dropped", "safety.revised", "safety.refused"} & set(summary["counts"])
    assert "kept" not in result.output and '"safety.dropped"' not in result.output
    assert "scoring only, nothing was changed: 2 rows flagged" in result.output
