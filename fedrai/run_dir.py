"""The layout of a run dir, and the only code that writes it.

```
RUN_DIR/config.toml          the resolved experiment config
RUN_DIR/metrics.jsonl        one JSON object per round (round 0 = before training)
RUN_DIR/adapters/round-N/    peft adapters, loadable with PeftModel.from_pretrained
RUN_DIR/checkpoint/          last completed round: global adapter + strategy state (for --resume),
                             safetensors + JSON, never a pickle (see checkpoint.py)
RUN_DIR/summary.json         totals and final figures
RUN_DIR/clients.jsonl        one JSON object per client and round: Ray node, host, peak RSS, loss
RUN_DIR/clients/client-K/    each simulated client's local state (audit); never sent anywhere
```
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedrai import checkpoint as ckpt_format
from fedrai.checkpoint import Checkpoint
from fedrai.private_files import private_dir


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Called with every row after it is written (experiment trackers: fedrai.tracking).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    def adapter(self, server_round: int) -> Path:
        return self.path / "adapters" / f"round-{server_round}"

    @property
    def checkpoint(self) -> Path:
        """The checkpoint's folder."""
        return self.path / "checkpoint"

    def has_checkpoint(self) -> bool:
        """A checkpoint is there (one from an older fedrai too: loading it says why it cannot resume)."""
        return ckpt_format.exists(self.checkpoint)

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(_jsonable(row)) + "\n")
        for listener in self.listeners:
            listener(row)

    @property
    def clients(self) -> Path:
        return self.path / "clients.jsonl"

    def append_clients(self, server_round: int, rows: list[dict[str, Any]]) -> None:
        """Per-client rows of a round (where each client ran, what it held); a resumed run appends."""
        if not rows:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.clients, "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(_jsonable({"round": server_round, **row})) + "\n")

    def read_clients(self) -> list[dict[str, Any]]:
        if not self.clients.is_file():
            return []
        return [json.loads(line) for line in self.clients.read_text(encoding="utf-8").splitlines() if line]

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.is_file():
            return []
        return [
            json.loads(line) for line in self.metrics.read_text(encoding="utf-8").splitlines() if line.strip()
        ]

    def truncate_metrics(self, last_round: int) -> None:
        """Drop rows of rounds after the checkpoint (a crash mid-round may leave one)."""
        rows = [r for r in self.read_metrics() if r["round"] <= last_round]
        self.metrics.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def save_checkpoint(self, ckpt: Checkpoint) -> None:
        private_dir(self.checkpoint)
        ckpt_format.save(self.checkpoint, ckpt)

    def load_checkpoint(self) -> Checkpoint:
        """The last completed round; ``CheckpointError`` (a clear one-line reason) if unusable."""
        return ckpt_format.load(self.checkpoint)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.summary.write_text(json.dumps(_jsonable(summary), indent=2), encoding="utf-8")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf are not JSON: write them as null."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        elif isinstance(v, dict):
            out[k] = _jsonable(v)
        else:
            out[k] = v
    return out
