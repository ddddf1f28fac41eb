"""Re-render this folder's PNGs with the current `fedrai report` plots, from the figures in report.md.

The CPU table's run dirs were not kept (``runs/`` is git-ignored), but report.md holds every
per-round figure the plots draw (rates to 0.1 point, losses to 0.001) and the final-set figures.
This rebuilds minimal run dirs from it (per-round and final n from ``experiments/cpu/base.toml``:
8 AdvBench and 4 MT-Bench prompts a round, 40 and 12 in the final sets), runs ``build_report`` on
them in a temporary folder and copies the PNGs that report.md links here. Nothing is re-run.

    python experiments/results/cpu/rerender_plots.py
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from fedrai.report import build_report  # noqa: E402
from fedrai.report.build import ROUND_COLUMNS  # noqa: E402

PNGS = ("advbench_refusal", "benign_refusal", "curves", "heldout_loss", "train_loss")
PER_ROUND_N = {"advbench.n": 8, "benign.n": 4}  # experiments/cpu/base.toml [eval]
FINAL_N = {"final.advbench.n": 40, "final.benign.n": 12}
STRATEGIES = {"FedAvg": "fedavg", "SCAFFOLD": "scaffold", "none": "fedavg"}


def _table(lines: list[str], start: int) -> tuple[list[str], list[list[str]]]:
    header = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return header, rows


def _number(cell: str) -> float | None:
    cell = cell.rstrip("†")
    return None if cell in ("–", "") else float(cell)


def parse_report(text: str) -> dict[str, dict]:
    """name -> {"setting", "strategy", "rows", "final"} from the Results and per-round tables."""
    lines = text.splitlines()
    by_title = {title: (key, kind) for title, key, kind in ROUND_COLUMNS}
    runs: dict[str, dict] = {}
    results = next(i for i, line in enumerate(lines) if line.startswith("| Run | Setting |"))
    header, rows = _table(lines, results)
    for row in rows:
        cell = dict(zip(header, row, strict=True))
        final = {}
        for title, key in (
            ("AdvBench refusal %", "advbench.refusal_rate"),
            ("Benign refusal % (MT-Bench)", "benign.refusal_rate"),
        ):
            if not cell[title].endswith("†") and (value := _number(cell[title])) is not None:
                final[f"final.{key}"] = value / 100
        runs[cell["Run"]] = {
            "setting": cell["Setting"],
            "strategy": cell["Aggregation"],
            "rounds_done": int(cell["Rounds"]),
            "final": final,
            "rows": [],
        }
    for i, line in enumerate(lines):
        match = re.match(r"### (\S+) \(", line)
        if not match or not lines[i + 2].startswith("| round"):
            continue
        header, rows = _table(lines, i + 2)
        for row in rows:
            out: dict[str, float] = {}
            for title, cell in zip(header, row, strict=True):
                value = _number(cell)
                if value is None:
                    continue
                if title == "round":
                    out["round"] = int(value)
                elif title in by_title:
                    key, kind = by_title[title]
                    out[key] = value / 100 if kind == "pct" else value * 1e6 if kind == "mb" else value
                else:
                    out[title] = value
            runs[match.group(1)]["rows"].append(out)
    return runs


def write_run(root: Path, name: str, run: dict) -> Path:
    path = root / name
    path.mkdir(parents=True)
    rows = run["rows"]
    for row in rows:
        row.update({k: v for k, v in PER_ROUND_N.items() if k.replace(".n", ".refusal_rate") in row})
    if rows and run["final"]:
        rows[-1].update(run["final"])
        rows[-1].update(FINAL_N)
    strategy = STRATEGIES.get(run["strategy"], run["strategy"].lower())
    (path / "config.toml").write_text(f'name = "{name}"\nseed = 0\n[strategy]\nname = "{strategy}"\n')
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = {
        "name": name,
        "setting": run["setting"],
        "strategy": strategy,
        "rounds": run["rounds_done"],
        "final": run["final"],
    }
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return path


def main() -> None:
    runs = parse_report((HERE / "report.md").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [write_run(Path(tmp) / "runs", name, run) for name, run in runs.items()]
        build_report(dirs, Path(tmp) / "out")
        for name in PNGS:
            shutil.copyfile(Path(tmp) / "out" / f"{name}.png", HERE / f"{name}.png")
    print(f"re-rendered {', '.join(PNGS)} from {len(runs)} runs in report.md")


if __name__ == "__main__":
    main()
