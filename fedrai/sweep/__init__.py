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
:func:`~fedrai.runtime.run_simulation`: one at a time by default (one Ray simulation on a small
machine), or up to ``--jobs N`` at once, each with its own SuperLink port, Ray and run dir. All
configs are validated before anything runs, so a typo in the last cell cannot waste the first
hour. A cell with ``summary.json`` is done and skipped; one with a checkpoint but no summary is
resumed; a failing cell is recorded in ``OUT/sweep_status.json`` and the sweep goes on. At the end
the report builder renders every finished cell into ``OUT/report/``.

Modules, one job each: :mod:`~fedrai.sweep.schema` (the sweep file's pydantic schema),
:mod:`~fedrai.sweep.plan` (cells and their validated configs), :mod:`~fedrai.sweep.status` (the
status file), :mod:`~fedrai.sweep.base_model` (the base-model row), :mod:`~fedrai.sweep.runner`
(running cells, sequentially or in parallel) and :mod:`~fedrai.sweep.cli` (the command).
"""

from fedrai.sweep.base_model import HELDOUT_FILE, RESPONSES_FILE, run_base_model
from fedrai.sweep.cli import INVALID_EXIT, MAX_FAILED_EXIT, sweep_command
from fedrai.sweep.plan import (
    BASE_MODEL_SLUG,
    BASE_MODEL_STRATEGY,
    Cell,
    SweepError,
    SweepPlan,
    cell_id,
    config_diff,
    describe,
    load_sweep,
    select,
)
from fedrai.sweep.runner import REPORT_DIR, SweepOutcome, execute_sweep, run_sweep
from fedrai.sweep.schema import BASE_MODEL_SETTING, SweepFile, slugify
from fedrai.sweep.status import STATUS_FILE, StatusFile, read_status

__all__ = [
    "BASE_MODEL_SETTING",
    "BASE_MODEL_SLUG",
    "BASE_MODEL_STRATEGY",
    "HELDOUT_FILE",
    "INVALID_EXIT",
    "MAX_FAILED_EXIT",
    "REPORT_DIR",
    "RESPONSES_FILE",
    "STATUS_FILE",
    "Cell",
    "StatusFile",
    "SweepError",
    "SweepFile",
    "SweepOutcome",
    "SweepPlan",
    "cell_id",
    "config_diff",
    "describe",
    "execute_sweep",
    "load_sweep",
    "read_status",
    "run_base_model",
    "run_sweep",
    "select",
    "slugify",
    "sweep_command",
]
