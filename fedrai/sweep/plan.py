"""From a sweep file to cells: expansion, resolved and validated configs, selection, differences.

Nothing here runs or writes: :func:`load_sweep` refuses a sweep whose file, or any cell's config,
is invalid, and a run dir that holds a run of a different config.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedrai.checkpoint import exists as checkpoint_exists
from fedrai.config import ConfigError, ExperimentConfig, apply_override, read_toml
from fedrai.sweep.schema import SettingEntry, StrategyEntry, parse_sweep_file

BASE_MODEL_SLUG = "base-model"
BASE_MODEL_STRATEGY = "none"


class SweepError(ValueError):
    """A sweep that cannot start: the message lists every problem found (file, cell, key)."""


@dataclass(frozen=True)
class Cell:
    """One run of the table: a setting under a strategy with a seed (or the base-model row)."""

    id: str
    setting: str
    strategy: str
    seed: int
    run_dir: Path
    config: ExperimentConfig
    base_model: bool = False

    @property
    def state(self) -> str:
        """``done`` (summary present), ``resume`` (checkpoint, no summary) or ``new``."""
        if (self.run_dir / "summary.json").is_file():
            return "done"
        if not self.base_model and checkpoint_exists(self.run_dir / "checkpoint"):
            return "resume"  # an old pickle checkpoint too: resuming it fails with a clear message
        return "new"


@dataclass
class SweepPlan:
    """A parsed, validated sweep: every cell with its resolved config."""

    path: Path
    name: str
    out_dir: Path
    base_config: ExperimentConfig
    cells: list[Cell]


def cell_id(setting_slug: str, strategy: str, seed: int) -> str:
    return f"{setting_slug}__{strategy}__seed{seed}"


def resolve_config(
    base: dict[str, Any], overrides: Sequence[str], fixed: dict[str, Any], origin: str
) -> ExperimentConfig:
    """The base TOML data with ``--set``-style overrides, then the cell's fixed keys, validated."""
    data = json.loads(json.dumps(base))  # deep copy of plain TOML data
    for item in overrides:
        apply_override(data, item)
    for key, value in fixed.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return ExperimentConfig.from_dict(data, origin=origin)


def load_sweep(sweep_path: str | Path, out_dir: str | Path | None = None) -> SweepPlan:
    """Parse a sweep file and resolve + validate every cell's config; raise :class:`SweepError`.

    Nothing runs and nothing is written. Also refuses run dirs that already hold a run of a
    *different* config (a changed sweep must not silently resume or report stale results).
    """
    path = Path(sweep_path)
    try:
        doc = read_toml(path, "sweep file")
    except ConfigError as err:
        raise SweepError(str(err)) from None
    base_ref = doc.get("base")
    if not isinstance(base_ref, str) or not base_ref:
        raise SweepError(f"{path}: `base` (the base experiment TOML, relative to the sweep file) is required")
    base_path = (path.parent / base_ref).resolve()
    if not base_path.is_file():
        raise SweepError(f"{path}: base experiment {base_ref!r} not found (looked at {base_path})")
    try:
        base_data = read_toml(base_path)
    except ConfigError as err:
        raise SweepError(str(err)) from None
    sweep, problems = parse_sweep_file(doc)
    if sweep is None:
        raise _invalid(path, problems)

    name = sweep.name or path.stem
    seeds = sweep.seeds if sweep.seeds is not None else [base_data.get("seed", 0)]
    out = Path(out_dir if out_dir is not None else (sweep.out or f"runs/{name}"))
    try:
        base_cfg = resolve_config(base_data, [], {}, str(base_path))
    except ConfigError as err:
        problems.append(str(err))
        base_cfg = ExperimentConfig()

    cells: list[Cell] = []
    if sweep.include_base_model:
        seed = seeds[0]
        cid = cell_id(BASE_MODEL_SLUG, BASE_MODEL_STRATEGY, seed)
        label = sweep.base_model_setting
        fixed = {"seed": seed, "name": cid, "setting": label, "output.dir": str(out / cid)}
        try:
            cfg = resolve_config(base_data, [*sweep.set, *sweep.base_model_set], fixed, f"{path} cell {cid}")
            cells.append(Cell(cid, label, BASE_MODEL_STRATEGY, seed, out / cid, cfg, base_model=True))
        except ConfigError as err:
            problems.append(str(err))
    for strategy in sweep.strategies:
        for setting in sweep.settings:
            if not _applies(setting, strategy):
                continue  # a setting may apply to some strategies only (e.g. an extra row)
            for seed in seeds:
                cid = cell_id(setting.key, strategy.key, seed)
                fixed = {
                    "seed": seed,
                    "name": cid,
                    "setting": setting.name,
                    "strategy.name": strategy.name,
                    "output.dir": str(out / cid),
                }
                overrides = [*sweep.set, *strategy.set, *setting.set]
                try:
                    cfg = resolve_config(base_data, overrides, fixed, f"{path} cell {cid}")
                except ConfigError as err:
                    problems.append(str(err))
                    continue
                cells.append(Cell(cid, setting.name, strategy.key, seed, out / cid, cfg))
    ids = [c.id for c in cells]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"cells share a run dir: {dupes} (give settings/strategies distinct `slug`s)")
    problems.extend(p for p in map(stale_run_dir, cells) if p)
    if problems:
        raise _invalid(path, problems)
    return SweepPlan(path=path, name=name, out_dir=out, base_config=base_cfg, cells=cells)


def _invalid(path: Path, problems: list[str]) -> SweepError:
    return SweepError(f"{path}: invalid sweep ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))


def _applies(setting: SettingEntry, strategy: StrategyEntry) -> bool:
    only = setting.strategies
    return only is None or strategy.key in only or strategy.name in only


def _comparable(cfg: ExperimentConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="json")
    data.get("output", {}).pop("dir", None)
    return data


def stale_run_dir(cell: Cell) -> str | None:
    """A problem line when the cell's run dir holds a run of another config, else None."""
    stored = cell.run_dir / "config.toml"
    if not stored.is_file():
        return None
    try:
        old = ExperimentConfig.from_toml(stored)
    except ConfigError:
        return f"{cell.run_dir}: holds a run whose config.toml no longer validates; delete it or use another --out"
    if _comparable(old) != _comparable(cell.config):
        diff = ", ".join(sorted(config_diff(old, cell.config))[:8])
        return f"{cell.run_dir}: holds a run of a different config ({diff}); delete that dir or use another --out"
    return None


def select(cells: Sequence[Cell], only: str | Sequence[str] | None) -> list[Cell]:
    """Cells whose id matches any pattern: a glob (``'*__scaffold__*'``) or a substring (``fl-cai``)."""
    if not only:
        return list(cells)
    patterns = [only] if isinstance(only, str) else list(only)
    patterns = [p.strip() for item in patterns for p in item.split(",") if p.strip()]

    def hit(c: Cell, p: str) -> bool:
        if any(ch in p for ch in "*?["):
            return fnmatch.fnmatchcase(c.id, p)
        return p.lower() in c.id.lower()

    return [c for c in cells if any(hit(c, p) for p in patterns)]


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_diff(a: ExperimentConfig, b: ExperimentConfig) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two configs (``name``/``output.dir`` ignored)."""
    fa, fb = _flatten(a.model_dump(mode="json")), _flatten(b.model_dump(mode="json"))
    skip = {"name", "output.dir"}
    return {
        k: (fa.get(k), fb.get(k))
        for k in sorted(set(fa) | set(fb))
        if k not in skip and fa.get(k) != fb.get(k)
    }


def describe(plan: SweepPlan, cells: Sequence[Cell]) -> list[str]:
    """Dry-run lines: each cell, its state and run dir, and how its config differs from the base."""
    lines = [f"sweep {plan.name} ({plan.path}): {len(cells)} of {len(plan.cells)} cell(s) -> {plan.out_dir}"]
    for i, cell in enumerate(cells, 1):
        lines.append(f"[{i}/{len(cells)}] {cell.id}  [{cell.state}]  {cell.run_dir}")
        lines.append(f"    setting={cell.setting!r} strategy={cell.strategy} seed={cell.seed}")
        if cell.base_model:
            lines.append("    base model evaluated once without FL (final eval sets)")
            continue
        for key, (_, new) in config_diff(plan.base_config, cell.config).items():
            lines.append(f"    {key} = {json.dumps(new)}")
    cfg = plan.base_config
    fed, tr = cfg.federation, cfg.train
    lines.append(
        f"base: {cfg.model.name_or_path}, {fed.num_clients} clients x {fed.num_rounds} rounds, "
        f"{tr.local_steps} local steps of batch {tr.batch_size}, eval final {cfg.eval.advbench_final} AdvBench"
    )
    return lines
