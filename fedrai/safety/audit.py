"""The client's local safety audit: what the filter did to which row, and the original text.

The audit stays in the client's own state dir (JSONL, appended). It is the record that lets a
site check the filter's decisions later; it never travels: only counts go to the server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fedrai.private_files import open_private, private_dir

AUDIT_FILE = "safety_audit.jsonl"


class AuditLog:
    """Appends one JSON record per screened row to ``state_dir/safety_audit.jsonl``.

    Rows that are kept unchanged are logged without their text (it is still in the client's
    data); rows that are dropped, refused, revised or invalid carry the original text so that
    nothing the filter removes is lost.
    """

    def __init__(self, state_dir: str | Path, include_kept_text: bool = False) -> None:
        self.path = Path(state_dir) / AUDIT_FILE
        self.include_kept_text = include_kept_text

    def write(
        self, records: dict[str, Any] | list[dict[str, Any]], context: dict[str, Any] | None = None
    ) -> None:
        """Append one record or a list (each gets ``time`` and the ``context`` fields, e.g. the round)."""
        if isinstance(records, dict):
            records = [records]
        if not records:
            return
        private_dir(self.path.parent)
        now = time.time()
        with open_private(self.path, "a") as f:
            for rec in records:
                if rec.get("action") == "keep" and not self.include_kept_text:
                    rec = {k: v for k, v in rec.items() if k not in ("prompt", "response")}
                f.write(json.dumps({"time": now, **(context or {}), **rec}, default=str) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [
            json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
