"""`fedrai safety audit RUN_DIR`: what each client's guards dropped, refused or revised, and why.

Reads the clients' local audits (``clients/client-K/safety_audit.jsonl``, or one state dir) and
summarises them as counts: filter actions, reasons, categories, CAI outcomes and principles. Texts
appear only when asked (``show_texts``), and only on the machine that holds the audit.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedrai.safety.audit import AUDIT_FILE

ACTED = ("drop", "refuse", "revise")  # filter actions that changed what is trained on


class AuditError(ValueError):
    """No audit where one was expected, or a file that is not an audit."""


@dataclass
class ClientAudit:
    """Counts of one client's audit; ``texts`` only filled when texts were asked for."""

    name: str
    path: Path
    screened: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    cai_outcomes: Counter[str] = field(default_factory=Counter)
    principles: Counter[str] = field(default_factory=Counter)
    cai_tries: int = 0
    repeated_records: int = 0
    texts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "client": self.name,
            "audit": str(self.path),
            "screened": self.screened,
            "actions": dict(self.actions),
            "reasons": dict(self.reasons),
            "categories": dict(self.categories),
            "cai_outcomes": dict(self.cai_outcomes),
            "principles": dict(self.principles),
            "cai_tries": self.cai_tries,
        }
        if self.texts:
            out["texts"] = self.texts
        return out


def audit_files(path: str | Path) -> list[tuple[str, Path]]:
    """(client name, audit file) for a run dir, a client's state dir, or an audit file itself."""
    path = Path(path)
    if path.is_file():
        return [(path.parent.name, path)]
    if (path / AUDIT_FILE).is_file():
        return [(path.name, path / AUDIT_FILE)]
    clients = path / "clients"
    found = sorted(
        ((d.name, d / AUDIT_FILE) for d in clients.glob("*") if (d / AUDIT_FILE).is_file()),
        key=lambda item: (len(item[0]), item[0]),  # client-2 before client-10
    )
    if not found:
        if not path.exists():
            raise AuditError(f"{path}: no such run dir or state dir")
        raise AuditError(
            f"{path}: no {AUDIT_FILE} under clients/*/ (the filter and client CAI were off, "
            "or the clients kept their state elsewhere: pass a state dir)"
        )
    return found


def summarise_client(name: str, path: Path, *, show_texts: bool = False) -> ClientAudit:
    """Count one audit file; the last filter decision per row id counts (re-screens are noted)."""
    result = ClientAudit(name=name, path=path)
    decisions: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise AuditError(f"{path}:{n}: not valid JSON: {err.msg}") from None
        if not isinstance(rec, dict):
            raise AuditError(f"{path}:{n}: expected a JSON object")
        event = rec.get("event")
        if event == "cai.try":
            result.cai_tries += 1
        elif event == "cai.outcome":
            key = str(rec.get("row_id", n))
            result.repeated_records += key in outcomes
            outcomes[key] = rec
        elif "action" in rec:
            key = str(rec.get("id", n))
            result.repeated_records += key in decisions
            decisions[key] = rec
    result.screened = len(decisions)
    for rec in decisions.values():
        action = str(rec["action"])
        result.actions[action] += 1
        if action in ACTED:
            result.reasons[str(rec.get("reason", "?"))] += 1
            for cat in rec.get("categories") or ([rec["category"]] if rec.get("category") else []):
                result.categories[str(cat)] += 1
            if rec.get("principle"):
                result.principles[str(rec["principle"])] += 1
            if show_texts:
                result.texts.append(
                    {
                        k: rec.get(k)
                        for k in ("id", "action", "reason", "score", "prompt", "response", "new_response")
                        if rec.get(k) is not None
                    }
                )
    for rec in outcomes.values():
        result.cai_outcomes[str(rec.get("status", "?"))] += 1
        for principle in rec.get("principles") or []:
            result.principles[str(principle)] += 1
        if show_texts and rec.get("status") != "kept":
            result.texts.append(
                {
                    "id": rec.get("row_id"),
                    "cai": rec.get("status"),
                    "prompt": rec.get("prompt"),
                    "original": rec.get("original"),
                    "final": rec.get("final"),
                }
            )
    return result


def summarise(path: str | Path, *, show_texts: bool = False) -> list[ClientAudit]:
    return [summarise_client(name, p, show_texts=show_texts) for name, p in audit_files(path)]


def _fmt(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common()) or "-"


def render(audits: list[ClientAudit]) -> list[str]:
    """Plain lines (no wrapping): one block per client, then the totals."""
    lines: list[str] = []
    total = ClientAudit(name="all clients", path=Path("."))
    for a in audits:
        acted = sum(a.actions[x] for x in ACTED)
        lines.append(
            f"{a.name}: screened {a.screened}, kept {a.actions['keep']}, dropped {a.actions['drop']}, "
            f"refused {a.actions['refuse']}, sent to CAI {a.actions['revise']} ({acted} acted on)"
        )
        lines.append(f"  reasons: {_fmt(a.reasons)}")
        lines.append(f"  categories: {_fmt(a.categories)}")
        if a.cai_outcomes:
            lines.append(f"  CAI outcomes: {_fmt(a.cai_outcomes)} ({a.cai_tries} revision tries)")
        if a.principles:
            lines.append(f"  principles: {_fmt(a.principles)}")
        if a.repeated_records:
            lines.append(f"  ({a.repeated_records} rows screened more than once: the last decision counts)")
        total.screened += a.screened
        for name in ("actions", "reasons", "categories", "cai_outcomes"):
            getattr(total, name).update(getattr(a, name))
    if len(audits) > 1:
        lines.append(
            f"all clients: screened {total.screened}, kept {total.actions['keep']}, dropped "
            f"{total.actions['drop']}, refused {total.actions['refuse']}, sent to CAI {total.actions['revise']}"
            + (f"; CAI outcomes: {_fmt(total.cai_outcomes)}" if total.cai_outcomes else "")
        )
    return lines
