"""Errors first, stack later: everything a run needs that can be checked before Flower starts.

Starting a SuperLink and Ray takes 25-40 s and buries a bad path under a hundred lines of
traceback; these checks take well under a second for a local file and fail with one line
naming the config key and the file. Nothing here writes: a failed check leaves no run dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from fedrai.assets import AssetError, is_embedded, resolve
from fedrai.config import ExperimentConfig

_PATH_PREFIXES = ("/", "./", "../", "~")


class PreflightError(ValueError):
    """A run that cannot work, found before any process starts (one line)."""


def preflight(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Check the output dir, the model, the data sources and the eval/safety files of ``cfg``."""
    check_output_dir(run_dir)
    check_model(cfg.model.name_or_path, "model.name_or_path", cfg.model.revision)
    check_training_data(cfg)
    if cfg.eval.enabled:
        check_eval_sources(cfg)
    if cfg.safety.enabled:
        safety = cfg.safety
        if safety.backend in ("embedded", "factored") and safety.head_path:
            _check_file(safety.head_path, "safety.head_path")
        if safety.backend == "llama_guard":
            check_model(safety.llama_guard_model, "safety.llama_guard_model", None)
        if safety.backend == "detoxify":
            if safety.detoxify_checkpoint:
                _check_file(safety.detoxify_checkpoint, "safety.detoxify_checkpoint")
            if safety.detoxify_config_dir and not Path(safety.detoxify_config_dir).expanduser().is_dir():
                raise PreflightError(
                    f"safety.detoxify_config_dir = {safety.detoxify_config_dir!r}: no such directory"
                )


def check_output_dir(run_dir: Path) -> None:
    """``run_dir`` is a directory we can write, or can be created under one we can write."""
    run_dir = Path(run_dir).expanduser()
    if run_dir.exists() and not run_dir.is_dir():
        raise PreflightError(f"output dir {run_dir}: exists and is not a directory")
    probe = run_dir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise PreflightError(f"output dir {run_dir}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PreflightError(f"output dir {run_dir}: {probe} is not writable")


def check_model(name_or_path: str, key: str, revision: str | None) -> None:
    """A local model dir with a config, a fetched ``embedded:`` asset, or a hub id usable offline."""
    try:
        path = resolve(name_or_path)
    except AssetError as err:
        raise PreflightError(f"{key}: {err}") from None
    local = Path(path).expanduser()
    if is_embedded(name_or_path) or local.exists() or path.startswith(_PATH_PREFIXES):
        if not local.is_dir():
            raise PreflightError(f"{key} = {name_or_path!r}: no such model directory ({local})")
        if not (local / "config.json").is_file() and not any(local.glob("*.gguf")):
            raise PreflightError(f"{key} = {name_or_path!r}: {local} has no config.json (not a model dir)")
        return
    if path.count("/") > 1:
        raise PreflightError(f"{key} = {name_or_path!r}: no such model directory (and not a hub id org/name)")
    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(path, "config.json", revision=revision)
    if isinstance(cached, str):
        return
    if constants.HF_HUB_OFFLINE:
        raise PreflightError(
            f"{key} = {name_or_path!r}: not a local dir and not in the Hugging Face cache, and the hub is "
            "offline (HF_HUB_OFFLINE); download it first or give a local path"
        )


def check_training_data(cfg: ExperimentConfig) -> None:
    """``data.source`` (and the harmful pool, when mixed in) reads with a usable row under ``data.on_bad_row``.

    Loading only, no partitioning: that would import ``datasets`` here too (seconds) for checks the
    config layer already makes.
    """
    from fedrai.data.loading import load_rows

    sources = [("data.source", cfg.data.source, cfg.data)]
    if cfg.data.harmful_fraction > 0:
        sources.append(
            ("data.harmful_source", cfg.data.harmful_source, cfg.data.model_copy(update={"max_rows": 0}))
        )
    for key, source, data_cfg in sources:
        try:
            load_rows(source, data_cfg, seed=cfg.seed)
        except (AssetError, ValueError, OSError) as err:
            raise PreflightError(f"{key}: {_one_line(err)}") from None


def check_eval_sources(cfg: ExperimentConfig) -> None:
    """AdvBench and benign prompts read (local files, embedded assets, or a cached hub dataset)."""
    from fedrai.evaluation.advbench import load_advbench, load_benign_prompts

    ev = cfg.eval
    for key, load, name in (
        ("eval.advbench_source", load_advbench, "advbench"),
        ("eval.benign_source", load_benign_prompts, "benign"),
    ):
        source = getattr(ev, key.split(".")[1])
        try:
            size = len(load(source))
        except (AssetError, ValueError, OSError, KeyError) as err:
            raise PreflightError(f"{key}: {_one_line(err)}") from None
        wanted = getattr(ev, f"{name}_per_round") + getattr(ev, f"{name}_final")
        if ev.disjoint_final and getattr(ev, f"{name}_final") and wanted > size:
            raise PreflightError(
                f"eval.disjoint_final: {key} has {size} prompts, fewer than eval.{name}_per_round + "
                f"eval.{name}_final = {wanted}; lower one of them"
            )


def _check_file(path: str, key: str) -> None:
    if not Path(resolve(path)).expanduser().is_file():
        raise PreflightError(f"{key} = {path!r}: no such file")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if text else type(err).__name__
