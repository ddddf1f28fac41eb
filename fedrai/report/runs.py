"""Reading run dirs: ``config.toml``, ``metrics.jsonl`` and ``summary.json``.

Lenient on purpose: a report is most wanted for runs that crashed half-way or predate a metric,
so missing files and keys become gaps in the table, not errors. Only unreadable JSON fails, with
the file and line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from fedrai.versions import RUN_FILES_SCHEMA, newer_schema_message

STRATEGY_LABELS = {
    "fedavg": "FedAvg",
    "fedprox": "FedProx",
    "fedavgm": "FedAvgM",
    "fedadam": "FedAdam",
    "fedyogi": "FedYogi",
    "fedadagrad": "FedAdagrad",
    "fedmedian": "FedMedian",
    "fedtrimmedavg": "FedTrimmedAvg",
    "krum": "Krum",
    "multikrum": "MultiKrum",
    "bulyan": "Bulyan",
    "scaffold": "SCAFFOLD",
}


class ReportError(ValueError):
    """A run dir that cannot be read; the message names the file (and line)."""


@dataclass
class Run:
    """One run dir, parsed."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.summary.get("name") or self.config.get("name") or self.path.name)

    @property
    def strategy(self) -> str:
        raw = str(self.summary.get("strategy") or self.config.get("strategy", {}).get("name") or "fedavg")
        return STRATEGY_LABELS.get(raw.lower(), raw)

    @property
    def setting(self) -> str:
        """The paper's row label: FL, + filter, + CAI (where it ran)."""
        if self.summary.get("setting"):
            return str(self.summary["setting"])
        parts = ["FL"]
        if self.config.get("safety", {}).get("enabled"):
            parts.append("filter")
        placement = self.config.get("cai", {}).get("placement", "none")
        if placement and placement != "none":
            parts.append("CAI" if placement == "server" else f"CAI ({placement})")
        return " + ".join(parts)

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(rounds, values) of a per-round metric, skipping rounds without it."""
        xs, ys = [], []
        for i, row in enumerate(self.rounds):
            value = row.get(key)
            if _is_number(value):
                xs.append(float(row.get("round", i)))
                ys.append(float(value))
        return xs, ys

    def final(self, key: str) -> tuple[float | None, bool]:
        """A headline figure and whether it is from the final (full) set rather than the last round."""
        # Only `final.`-prefixed keys count as final: an unprefixed key in a summary may be the last
        # round's subset figure (the round driver copies the last metrics row into summary["final"]).
        s = self.summary
        for source in (s.get("final"), s.get("final_metrics"), s.get("metrics"), s):
            if isinstance(source, dict) and _is_number(source.get(f"final.{key}")):
                return float(source[f"final.{key}"]), True
        for row in reversed(self.rounds):
            if _is_number(row.get(f"final.{key}")):
                return float(row[f"final.{key}"]), True
        for row in reversed(self.rounds):
            if _is_number(row.get(key)):
                return float(row[key]), False
        return None, False

    def gated_rounds(self) -> int | None:
        """Rounds whose candidate adapter the server's gate refused (None: the run had no gate)."""
        flags = [row["gate.rejected"] for row in self.rounds if _is_number(row.get("gate.rejected"))]
        return int(sum(flags)) if flags else None

    def round_value(self, round_no: int, key: str) -> float | None:
        for row in self.rounds:
            if row.get("round") == round_no and _is_number(row.get(key)):
                return float(row[key])
        return None

    def total_bytes(self) -> float | None:
        """Adapter bytes up + down over the run (summary totals, else summed per round)."""
        s = self.summary
        for source in (s.get("totals"), s):
            if isinstance(source, dict) and (
                _is_number(source.get("bytes_up")) or _is_number(source.get("bytes_down"))
            ):
                return float(source.get("bytes_up") or 0) + float(source.get("bytes_down") or 0)
        seen = [
            row for row in self.rounds if _is_number(row.get("bytes_up")) or _is_number(row.get("bytes_down"))
        ]
        if not seen:
            return None
        return float(sum((row.get("bytes_up") or 0) + (row.get("bytes_down") or 0) for row in seen))

    @property
    def is_base_model(self) -> bool:
        """An evaluation of the untouched base model (no FL rounds), e.g. a sweep's baseline cell."""
        return self.summary.get("rounds") == 0 or "base model" in str(self.summary.get("setting", "")).lower()

    def num_rounds(self) -> int:
        if _is_number(self.summary.get("rounds")):
            return int(self.summary["rounds"])
        trained = [
            row.get("round") for row in self.rounds if _is_number(row.get("round")) and row.get("round") > 0
        ]
        if trained:
            return int(max(trained))
        return int(self.config.get("federation", {}).get("num_rounds", 0))


def load_run(path: str | Path) -> Run:
    """Parse one run dir; it needs at least one of the three files."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: not a run dir")
    run = Run(path=path)
    cfg_file, metrics_file, summary_file = path / "config.toml", path / "metrics.jsonl", path / "summary.json"
    if not any(f.is_file() for f in (cfg_file, metrics_file, summary_file)):
        raise ReportError(f"{path}: no config.toml, metrics.jsonl or summary.json; is this a run dir?")
    if cfg_file.is_file():
        try:
            run.config = tomllib.loads(cfg_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ReportError(f"{cfg_file}: not valid TOML: {err}") from None
    if metrics_file.is_file():
        for lineno, line in enumerate(metrics_file.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ReportError(f"{metrics_file}:{lineno}: not valid JSON: {err.msg}") from None
            if not isinstance(row, dict):
                raise ReportError(f"{metrics_file}:{lineno}: expected a JSON object per line")
            run.rounds.append(row)
    if summary_file.is_file():
        try:
            run.summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ReportError(f"{summary_file}: not valid JSON: {err}") from None
    _check_schema(summary_file, run.summary if isinstance(run.summary, dict) else {})
    _check_schema(cfg_file, run.config.get("fedrai", {}))
    return run


def _check_schema(file: Path, writer: Any) -> None:
    """A file from a newer fedrai may mean something else: say so rather than misreport it."""
    schema = writer.get("schema_version") if isinstance(writer, dict) else None
    if isinstance(schema, int) and schema > RUN_FILES_SCHEMA:
        version = str(writer.get("fedrai_version", writer.get("version", "unknown")))
        raise ReportError(f"{file}: {newer_schema_message('this file', schema, RUN_FILES_SCHEMA, version)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
