"""Sweeps: a whole results table (settings x strategies x seeds) as one resumable command.

A sweep file names a base experiment and what varies::

    base = "base.toml"                 # experiment TOML, relative to this file
    name = "paper-cpu"                 # optional; default: the file's stem
    out = "runs/paper-cpu"             # optional default for --out (relative to the cwd)
    seeds = [0]
    set = ["eval.advbench_final=100"]  # optional overrides for every cell
    include_base_model = true          # one extra row: the base model evaluated without FL

    [[settings]]
    name = "FL + filter"               # the row label in reports (config `setting`)
    set = ["safety.enabled=true"]      # `--set`-style overrides
    # slug = "fl-filter"               # optional; default: derived from the name

    [[strategies]]                     # or: strategies = ["fedavg", "scaffold"]
    name = "scaffold"
    set = ["train.optimizer=sgd"]

Every cell is its own run dir ``OUT/<setting-slug>__<strategy>__seed<k>`` and its own
:func:`~fedrai.runtime.run_simulation`, one at a time (one Ray simulation on a small machine). All
configs are validated before anything runs, so a typo in the last cell cannot waste the first
hour. A cell with ``summary.json`` is done and skipped; one with a checkpoint but no summary is
resumed; a failing cell is recorded in ``OUT/sweep_status.json`` and the sweep goes on. At the end
the report builder renders every finished cell into ``OUT/report/``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from fedrai.checkpoint import exists as checkpoint_exists
from fedrai.config import ConfigError, ExperimentConfig, apply_override, read_toml
from fedrai.run_lock import RunDirBusy, run_dir_lock

STATUS_FILE = "sweep_status.json"
REPORT_DIR = "report"
BASE_MODEL_SLUG = "base-model"
BASE_MODEL_SETTING = "base model, no FL"
BASE_MODEL_STRATEGY = "none"
HELDOUT_FILE = "heldout.jsonl"
RESPONSES_FILE = "responses.json"

# Exit codes of `fedrai sweep`: 0 = every selected cell finished; 1..100 = that many cells failed
# (capped); INVALID_EXIT = the sweep or a cell's config is invalid and nothing ran.
MAX_FAILED_EXIT = 100
INVALID_EXIT = 101

_SWEEP_KEYS = {"base", "name", "out", "seeds", "set", "settings", "strategies", "include_base_model",
               "base_model_setting", "base_model_set"}  # fmt: skip
_SETTING_KEYS = {"name", "set", "slug", "strategies"}
_STRATEGY_KEYS = {"name", "set", "slug"}


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


@dataclass
class SweepOutcome:
    """What :func:`execute_sweep` did: the selected cells' run dirs, failures, and the report."""

    run_dirs: list[Path]
    failed: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    report: Path | None = None


# --------------------------------------------------------------------------- parsing
def slugify(label: str) -> str:
    """``"FL + filter + CAI"`` -> ``"fl-filter-cai"``: safe in paths, stable across runs."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    return slug or "setting"


def cell_id(setting_slug: str, strategy: str, seed: int) -> str:
    return f"{setting_slug}__{strategy}__seed{seed}"


def _as_overrides(value: Any, where: str, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: `set` must be a list of 'section.key=value' strings")
        return []
    bad = [v for v in value if "=" not in v]
    if bad:
        problems.append(f"{where}: overrides need key=value, got {bad}")
    return [v for v in value if "=" in v]


def _entries(raw: Any, kind: str, allowed: set[str], problems: list[str]) -> list[dict[str, Any]]:
    """``[[settings]]`` / ``[[strategies]]`` tables (or bare names) as dicts with name/set/slug."""
    if raw is None:
        problems.append(f"`{kind}` is missing: give at least one")
        return []
    if not isinstance(raw, list) or not raw:
        problems.append(f"`{kind}` must be a non-empty list")
        return []
    out = []
    for i, item in enumerate(raw):
        where = f"{kind}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a table with `name` and `set`, or a name")
            continue
        unknown = sorted(set(item) - allowed)
        if unknown:
            problems.append(f"{where}: unknown keys {unknown} (allowed: {', '.join(sorted(allowed))})")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: `name` must be a non-empty string")
            continue
        slug = item.get("slug") or slugify(name)
        if not isinstance(slug, str) or slugify(slug) != slug:
            problems.append(f"{where}: `slug` {slug!r} must be lowercase letters, digits and dashes")
            continue
        entry = {"name": name, "slug": slug, "set": _as_overrides(item.get("set"), where, problems)}
        if "strategies" in item:  # settings only: the strategies this row applies to
            entry["strategies"] = item["strategies"]
        out.append(entry)
    return out


def _resolve(
    base: dict[str, Any], overrides: Sequence[str], fixed: dict[str, Any], origin: str
) -> ExperimentConfig:
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
    problems: list[str] = []
    unknown = sorted(set(doc) - _SWEEP_KEYS)
    if unknown:
        problems.append(f"unknown keys {unknown} (allowed: {', '.join(sorted(_SWEEP_KEYS))})")

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

    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name:
        problems.append("`name` must be a non-empty string")
        name = path.stem
    seeds = doc.get("seeds", [base_data.get("seed", 0)])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        problems.append(f"`seeds` must be a non-empty list of integers >= 0, got {seeds!r}")
        seeds = []
    if len(set(seeds)) != len(seeds):
        problems.append(f"`seeds` has duplicates: {seeds}")
    common = _as_overrides(doc.get("set"), "set", problems)
    settings = _entries(doc.get("settings"), "settings", _SETTING_KEYS, problems)
    strategies = _entries(doc.get("strategies"), "strategies", _STRATEGY_KEYS, problems)
    include_base = doc.get("include_base_model", False)
    if not isinstance(include_base, bool):
        problems.append("`include_base_model` must be true or false")
        include_base = False
    base_label = doc.get("base_model_setting", BASE_MODEL_SETTING)
    base_model_set = _as_overrides(doc.get("base_model_set"), "base_model_set", problems)

    if out_dir is None:
        out_dir = doc.get("out") or f"runs/{name}"
    out = Path(out_dir)

    try:
        base_cfg = _resolve(base_data, [], {}, str(base_path))
    except ConfigError as err:
        problems.append(str(err))
        base_cfg = ExperimentConfig()

    cells: list[Cell] = []
    if include_base and seeds:
        seed = seeds[0]
        cid = cell_id(BASE_MODEL_SLUG, BASE_MODEL_STRATEGY, seed)
        try:
            cfg = _resolve(
                base_data,
                [*common, *base_model_set],
                {"seed": seed, "name": cid, "setting": base_label, "output.dir": str(out / cid)},
                f"{path} cell {cid}",
            )
            cells.append(Cell(cid, base_label, BASE_MODEL_STRATEGY, seed, out / cid, cfg, base_model=True))
        except ConfigError as err:
            problems.append(str(err))
    for strategy in strategies:
        for setting in settings:
            only = setting.get("strategies")
            if only is not None and not (isinstance(only, list) and all(isinstance(x, str) for x in only)):
                problems.append(
                    f"settings {setting['name']!r}: `strategies` must be a list of strategy names"
                )
                only = None
            if only is not None and strategy["slug"] not in only and strategy["name"] not in only:
                continue  # a setting may apply to some strategies only (e.g. an extra row)
            for seed in seeds:
                cid = cell_id(setting["slug"], strategy["slug"], seed)
                fixed = {
                    "seed": seed,
                    "name": cid,
                    "setting": setting["name"],
                    "strategy.name": strategy["name"],
                    "output.dir": str(out / cid),
                }
                try:
                    cfg = _resolve(
                        base_data,
                        [*common, *strategy["set"], *setting["set"]],
                        fixed,
                        f"{path} cell {cid}",
                    )
                except ConfigError as err:
                    problems.append(str(err))
                    continue
                cells.append(Cell(cid, setting["name"], strategy["slug"], seed, out / cid, cfg))
    ids = [c.id for c in cells]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"cells share a run dir: {dupes} (give settings/strategies distinct `slug`s)")
    for cell in cells:
        problem = _stale_run_dir(cell)
        if problem:
            problems.append(problem)
    if problems:
        raise SweepError(f"{path}: invalid sweep ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    return SweepPlan(path=path, name=name, out_dir=out, base_config=base_cfg, cells=cells)


def _comparable(cfg: ExperimentConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="json")
    data.get("output", {}).pop("dir", None)
    return data


def _stale_run_dir(cell: Cell) -> str | None:
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


# --------------------------------------------------------------------------- status file
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StatusFile:
    """``OUT/sweep_status.json``: one entry per cell, rewritten atomically at every change."""

    def __init__(self, out_dir: Path, plan: SweepPlan) -> None:
        self.path = out_dir / STATUS_FILE
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
        self.data["cells"][cell.id].update(fields, updated=_now())
        self.write()

    def write(self) -> None:
        cells = self.data.get("cells", {}).values()
        self.data["failed"] = sum(1 for c in cells if c.get("state") == "failed")
        self.data["updated"] = _now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def read_status(out_dir: str | Path) -> dict[str, Any]:
    """The status file of a sweep's out dir ({} when there is none)."""
    path = Path(out_dir) / STATUS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# --------------------------------------------------------------------------- running
def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _error_text(err: BaseException, limit: int = 4000) -> str:
    text = f"{type(err).__name__}: {err}"
    if not str(err):
        text += "\n" + "".join(traceback.format_exception(err))
    return text if len(text) <= limit else text[:1000] + "\n...\n" + text[-(limit - 1000) :]


def run_base_model(cell: Cell) -> dict[str, Any]:
    """Evaluate the untouched base model once, written as a run dir the report reads as a row.

    Uses the evaluation layer's standalone path (:func:`fedrai.evaluation.standalone.evaluate_model`)
    with the same final sets, decoding and scorers the FL runs use, and the same held-out rows.
    """
    from fedrai.data.client_data import heldout_rows
    from fedrai.evaluation.standalone import evaluate_model
    from fedrai.run_dir import RunDir

    cfg = cell.config
    run = RunDir(cell.run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    for stale in (run.metrics, run.summary):
        stale.unlink(missing_ok=True)
    run.config.write_text(cfg.to_toml(), encoding="utf-8")
    heldout_path = None
    if cfg.data.heldout_rows > 0:
        mf = cfg.data.messages_field
        rows = heldout_rows(cfg)
        heldout_path = run.path / HELDOUT_FILE
        heldout_path.write_text(
            "".join(
                json.dumps({mf: [*r["messages"], {"role": "assistant", "content": r["response"]}]}) + "\n"
                for r in rows
            ),
            encoding="utf-8",
        )
    t0 = time.perf_counter()
    result = evaluate_model(cfg, heldout=heldout_path)
    seconds = time.perf_counter() - t0
    metrics = result["metrics"]
    (run.path / RESPONSES_FILE).write_text(
        json.dumps(result.get("responses", []), indent=1), encoding="utf-8"
    )
    run.append_metrics({"round": 0, "seconds": seconds, **{f"final.{k}": v for k, v in metrics.items()}})
    summary = {
        "name": cfg.name,
        "strategy": BASE_MODEL_STRATEGY,
        "setting": cell.setting,
        "rounds": 0,
        "seconds": seconds,
        "failures": 0,
        "bytes_up": 0,
        "bytes_down": 0,
        "final": dict(metrics),
        "model": cfg.model.name_or_path,
    }
    run.write_summary(summary)
    return summary


def _run_fl_cell(cell: Cell, resume: bool, log: Callable[[str], None], prefix: str) -> None:
    from fedrai.run_dir import RunDir
    from fedrai.runtime import run_simulation

    if resume:  # an old (pickle) or damaged checkpoint fails here, with its reason, before any stack starts
        run = RunDir(cell.run_dir)
        run.load_checkpoint().check_strategy(cell.config.strategy.name, run.checkpoint)

    def show(line: str) -> None:
        if "[fedrai]" in line:
            log(f"{prefix} {line[line.index('[fedrai]') :]}")

    run_simulation(cell.config, cell.run_dir.resolve(), resume=resume, on_output=show)


def _fetch_assets(cells: Sequence[Cell]) -> None:
    """Fetch every ``embedded:`` asset once, before the first cell starts its workers."""
    from fedrai.assets import fetch_for

    seen: set[str] = set()
    for cell in cells:
        key = cell.config.to_toml()
        if key not in seen:
            seen.add(key)
            fetch_for(cell.config)


def execute_sweep(
    sweep_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    only: str | Sequence[str] | None = None,
    dry_run: bool = False,
    log: Callable[[str], None] = lambda m: print(m, flush=True),
) -> SweepOutcome:
    """Validate every cell, then run the selected ones in order and build the report.

    Raises :class:`SweepError` before running anything if the sweep or any cell is invalid or
    ``only`` selects nothing. Failed cells do not stop the sweep; they are listed in the outcome
    and in ``OUT/sweep_status.json``.
    """
    plan = load_sweep(sweep_path, out_dir)
    cells = select(plan.cells, only)
    if not cells:
        raise SweepError(f"--only {only!r} matches none of: {', '.join(c.id for c in plan.cells)}")
    outcome = SweepOutcome(run_dirs=[c.run_dir for c in cells])
    if dry_run:
        for line in describe(plan, cells):
            log(line)
        return outcome

    _fetch_assets(cells)
    out = plan.out_dir
    try:
        with run_dir_lock(out):  # one sweep per sweep dir (each cell's run also locks its run dir)
            return _execute_locked(plan, cells, outcome, log)
    except RunDirBusy as err:
        raise SweepError(str(err)) from None


def _execute_locked(
    plan: SweepPlan, cells: Sequence[Cell], outcome: SweepOutcome, log: Callable[[str], None]
) -> SweepOutcome:
    out = plan.out_dir
    status = StatusFile(out, plan)
    status.write()
    started = time.monotonic()
    durations: list[float] = []
    to_run = [c for c in cells if c.state != "done"]
    log(
        f"[sweep] {plan.name}: {len(cells)} cell(s), {len(to_run)} to run, {len(cells) - len(to_run)} done -> {out}"
    )
    remaining = len(to_run)
    for i, cell in enumerate(cells, 1):
        prefix = f"[sweep {i}/{len(cells)}]"
        state = cell.state
        if state == "done":
            log(f"{prefix} {cell.id}: complete, skipped")
            outcome.skipped.append(cell.id)
            status.update(cell, state="done")
            continue
        elapsed = time.monotonic() - started
        eta = (
            f"ETA {_fmt_s(sum(durations) / len(durations) * remaining)}"
            if durations
            else "ETA after the first cell"
        )
        action = "resuming" if state == "resume" else "running"
        log(
            f"{prefix} {cell.id}: {action} ({cell.setting}, {cell.strategy}, seed {cell.seed}); elapsed {_fmt_s(elapsed)}, {eta}"
        )
        status.update(cell, state="running", started=_now(), resumed=state == "resume", error=None)
        t0 = time.monotonic()
        try:
            if cell.base_model:
                with run_dir_lock(cell.run_dir):
                    run_base_model(cell)
            else:
                if state == "new":
                    _clear_partial(cell.run_dir)
                _run_fl_cell(cell, state == "resume", log, prefix)
        except KeyboardInterrupt:
            status.update(cell, state="interrupted", seconds=round(time.monotonic() - t0, 1))
            raise
        except Exception as err:  # noqa: BLE001 - a failing cell is recorded and the sweep goes on
            seconds = time.monotonic() - t0
            durations.append(seconds)
            remaining -= 1
            outcome.failed.append(cell.id)
            status.update(cell, state="failed", seconds=round(seconds, 1), error=_error_text(err))
            log(
                f"{prefix} {cell.id}: FAILED after {_fmt_s(seconds)}: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
            )
            continue
        seconds = time.monotonic() - t0
        durations.append(seconds)
        remaining -= 1
        outcome.ran.append(cell.id)
        status.update(cell, state="done", seconds=round(seconds, 1))
        log(f"{prefix} {cell.id}: done in {_fmt_s(seconds)}")

    finished = [c.run_dir for c in plan.cells if (c.run_dir / "summary.json").is_file()]
    if finished:
        try:
            from fedrai.report import build_report

            outcome.report = build_report(finished, out / REPORT_DIR)
            status.data["report"] = str(outcome.report)
            log(f"[sweep] report of {len(finished)} run(s): {outcome.report}")
        except Exception as err:  # noqa: BLE001 - the runs are done; a report can be rebuilt later
            status.data["report_error"] = _error_text(err)
            log(f"[sweep] report failed: {err}")
    status.write()
    log(
        f"[sweep] {plan.name}: {len(outcome.ran)} ran, {len(outcome.skipped)} skipped, "
        f"{len(outcome.failed)} failed in {_fmt_s(time.monotonic() - started)}; status: {status.path}"
    )
    return outcome


def _clear_partial(run_dir: Path) -> None:
    """A run that died before its first checkpoint restarts from scratch: drop its stale rows."""
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "adapters", ignore_errors=True)


def run_sweep(
    sweep_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    only: str | Sequence[str] | None = None,
    dry_run: bool = False,
) -> list[Path]:
    """Run a sweep (see module docstring); return the selected cells' run dirs.

    Failures are in ``OUT/sweep_status.json`` (``read_status``); :func:`execute_sweep` returns them.
    """
    return execute_sweep(sweep_path, out_dir, only=only, dry_run=dry_run).run_dirs


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


# --------------------------------------------------------------------------- CLI
def sweep_command(
    sweep: Annotated[
        Path, typer.Argument(help="Sweep TOML (base experiment x settings x strategies x seeds).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Sweep dir (default: the sweep's `out`, else runs/NAME).")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only cells whose id matches: glob or substring (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the cells and their config differences.")
    ] = False,
) -> None:
    """Run a whole table: every cell is a run dir; done cells are skipped, interrupted ones resumed.

    Exit code: 0 when every selected cell finished, else the number of failed cells (at most 100);
    101 when the sweep is invalid and nothing ran.
    """
    try:
        outcome = execute_sweep(sweep, out, only=only, dry_run=dry_run)
    except SweepError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(INVALID_EXIT) from None
    if outcome.failed:
        typer.echo(f"{len(outcome.failed)} cell(s) failed: {', '.join(outcome.failed)}", err=True)
        raise typer.Exit(min(len(outcome.failed), MAX_FAILED_EXIT))
