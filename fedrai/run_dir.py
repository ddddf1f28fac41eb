"""The layout of a run dir, and the only code that writes it.

```
RUN_DIR/config.toml          the resolved experiment config
RUN_DIR/metrics.jsonl        one JSON object per round (round 0 = before training)
RUN_DIR/adapters/round-N/    peft adapters, loadable with PeftModel.from_pretrained
RUN_DIR/checkpoint/          last completed round: global adapter + strategy state (for --resume)
RUN_DIR/summary.json         totals and final figures
RUN_DIR/clients/client-K/    each simulated client's local state (audit); never sent anywhere
```
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from fedrai.private_files import private_dir


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

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
        return self.path / "checkpoint" / "state.pt"

    def append_metrics(self, row: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(_jsonable(row)) + "\n")

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

    def save_checkpoint(
        self,
        server_round: int,
        adapter: dict[str, torch.Tensor],
        strategy_state: bytes,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """``extra``: other server state a resume needs (e.g. the acceptance gate's bests)."""
        private_dir(self.checkpoint.parent)
        tmp = self.checkpoint.with_suffix(".tmp")
        blob = {
            "round": server_round,
            "adapter": dict(adapter),
            "strategy": strategy_state,
            "extra": extra or {},
        }
        torch.save(blob, tmp)
        tmp.replace(self.checkpoint)  # atomic: a crash never leaves half a checkpoint

    def load_checkpoint(self) -> tuple[int, dict[str, torch.Tensor], bytes]:
        if not self.checkpoint.is_file():
            raise FileNotFoundError(f"{self.checkpoint}: no checkpoint to resume from")
        blob = torch.load(self.checkpoint, weights_only=False)
        return int(blob["round"]), blob["adapter"], blob["strategy"]

    def checkpoint_extra(self) -> dict[str, Any]:
        blob = torch.load(self.checkpoint, weights_only=False)
        return dict(blob.get("extra", {}))

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
