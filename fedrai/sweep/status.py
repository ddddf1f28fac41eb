"""``OUT/sweep_status.json``: one entry per cell, rewritten atomically at every change.

Cells that run at once (``--jobs``) update it from several threads: every update and write holds
one lock, and each write goes to a unique temporary file that replaces the status file, so a
reader sees either the old or the whole new file. One sweep process owns a sweep dir (it holds
the dir's writer lock), so no other process writes it.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedrai.sweep.plan import Cell, SweepPlan

STATUS_FILE = "sweep_status.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StatusFile:
    """The status of every cell of a plan; safe to update from several threads."""

    def __init__(self, out_dir: Path, plan: SweepPlan) -> None:
        self.path = out_dir / STATUS_FILE
        self._lock = threading.RLock()
        self.data: dict[str, Any] = {}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                self.data = {}
        self.data.update({"sweep": str(plan.path.resolve()), "name": plan.name, "out": str(out_dir)})
        cells = self.data.setdefault("cells", {})
        for cell in plan.cells:
            entry = cells.setdefault(cell.id, {})
            entry.update({"setting": cell.setting, "strategy": cell.strategy, "seed": cell.seed,
                          "run_dir": str(cell.run_dir)})  # fmt: skip
            if cell.state == "done":
                entry["state"] = "done"
            entry.setdefault("state", "pending")

    def update(self, cell: Cell, **fields: Any) -> None:
        with self._lock:
            self.data["cells"][cell.id].update(fields, updated=now())
            self.write()

    def set(self, key: str, value: Any) -> None:
        """A sweep-level field (``report``, ``report_error``, ``jobs``), written at the next write."""
        with self._lock:
            self.data[key] = value

    def write(self) -> None:
        with self._lock:
            cells = self.data.get("cells", {}).values()
            self.data["failed"] = sum(1 for c in cells if c.get("state") == "failed")
            self.data["updated"] = now()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
            tmp.replace(self.path)


def read_status(out_dir: str | Path) -> dict[str, Any]:
    """The status file of a sweep's out dir ({} when there is none)."""
    path = Path(out_dir) / STATUS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
