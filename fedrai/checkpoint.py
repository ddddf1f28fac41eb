"""The resume checkpoint on disk: tensors as safetensors, everything else as JSON; never a pickle.

Run dirs get shared between people, so reading one back must not run code from it. A
checkpoint is two files in ``RUN_DIR/checkpoint/``:

- ``tensors-rNNNNNN.safetensors``: the global adapter (``adapter/<key>``) and the strategy's
  arrays (``strategy/<group>/<key>``), e.g. FedAdam's moments or SCAFFOLD's control variate;
- ``state.json``: format and schema version, the fedrai version that wrote it, the round, the
  order of every tensor group, the strategy's scalars, other server state (``extra``, e.g. the
  acceptance gate's bests) and the SHA-256 of the tensors file.

``state.json`` is written last and names its tensors file, so a crash while saving leaves the
previous checkpoint whole. Checkpoints of fedrai before this format (``state.pt``, a torch pickle)
are refused unread.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from fedrai.private_files import open_private
from fedrai.versions import CHECKPOINT_SCHEMA, fedrai_version, newer_schema_message

FORMAT = "fedrai-checkpoint"
MANIFEST = "state.json"
LEGACY = "state.pt"
_TENSORS = re.compile(r"tensors-r\d{6,}\.safetensors")

Arrays = dict[str, np.ndarray]


@dataclass
class StrategyState:
    """A strategy's cross-round state as plain data: named groups of arrays plus JSON scalars.

    Each group is ordered by adapter key; a group that is absent is not initialised yet (e.g.
    FedAdam's moments before round 1). ``strategies.state`` says what each strategy keeps.
    """

    tensors: dict[str, Arrays] = field(default_factory=dict)
    scalars: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> StrategyState:
        """A deep copy: strategies update their arrays in place (SCAFFOLD's ``c``)."""
        return StrategyState(
            {g: {k: np.array(v, copy=True) for k, v in arrays.items()} for g, arrays in self.tensors.items()},
            copy.deepcopy(self.scalars),
        )


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: missing, from an older or newer fedrai, or damaged."""


@dataclass
class Checkpoint:
    """The last completed round: what a resumed run needs to go on exactly as before."""

    round: int
    adapter: dict[str, torch.Tensor]
    strategy_name: str
    strategy: StrategyState = field(default_factory=StrategyState)
    extra: dict[str, Any] = field(default_factory=dict)

    def check_strategy(self, name: str, where: Path) -> None:
        """A run resumes with the strategy that wrote its state."""
        if name != self.strategy_name:
            raise CheckpointError(
                f"{where}: the checkpoint holds {self.strategy_name!r} strategy state, but the run's "
                f"config says strategy.name = {name!r}"
            )


def exists(directory: Path) -> bool:
    """A checkpoint of any format is there (an old one is refused on load, with a message)."""
    return (directory / MANIFEST).is_file() or (directory / LEGACY).is_file()


def completed_round(directory: Path) -> int | None:
    """The round a checkpoint holds, from its manifest alone (None: no readable fedrai checkpoint).

    For messages ("interrupted after round N"); :func:`load` is what checks a checkpoint.
    """
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = manifest.get("round") if isinstance(manifest, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def save(directory: Path, ckpt: Checkpoint) -> None:
    """Write the tensors file, then ``state.json`` naming it (atomic), then drop older tensors."""
    import torch
    from safetensors.torch import save as save_safetensors

    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {
        f"adapter/{k}": v.detach().cpu().contiguous() for k, v in ckpt.adapter.items()
    }
    groups: dict[str, list[str]] = {}
    for group, arrays in ckpt.strategy.tensors.items():
        if "/" in group:
            raise ValueError(f"strategy state group {group!r} may not contain '/'")
        groups[group] = list(arrays)
        for k, a in arrays.items():
            tensors[f"strategy/{group}/{k}"] = torch.from_numpy(np.ascontiguousarray(a))
    blob = save_safetensors(tensors)
    name = f"tensors-r{ckpt.round:06d}.safetensors"
    _write_atomic(directory / name, blob)
    manifest = {
        "format": FORMAT,
        "schema_version": CHECKPOINT_SCHEMA,
        "fedrai_version": fedrai_version(),
        "round": ckpt.round,
        "tensors_file": name,
        "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        "adapter": list(ckpt.adapter),
        "strategy": {"name": ckpt.strategy_name, "groups": groups, "scalars": ckpt.strategy.scalars},
        "extra": ckpt.extra,
    }
    _write_atomic(directory / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
    for old in directory.iterdir():
        if _TENSORS.fullmatch(old.name) and old.name != name:
            old.unlink(missing_ok=True)


def load(directory: Path) -> Checkpoint:
    """Read and check a checkpoint; anything unexpected is a ``CheckpointError`` naming the file."""
    path = directory / MANIFEST
    if not path.is_file():
        if (directory / LEGACY).is_file():
            raise CheckpointError(
                f"{directory / LEGACY}: checkpoint from an older fedrai (pickle format); loading it "
                "could run code stored in the file, so it cannot be resumed safely; start a new run"
            )
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a fedrai checkpoint (not JSON: {e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f'{path}: not a fedrai checkpoint (no "format": "{FORMAT}")')
    schema = manifest.get("schema_version")
    if not isinstance(schema, int) or schema < 1:
        raise CheckpointError(f"{path}: schema_version must be a positive integer, got {schema!r}")
    if schema > CHECKPOINT_SCHEMA:
        writer = str(manifest.get("fedrai_version", "unknown"))
        raise CheckpointError(
            f"{path}: {newer_schema_message('the checkpoint', schema, CHECKPOINT_SCHEMA, writer)}"
        )
    try:
        return _parse(directory, manifest)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: damaged checkpoint ({type(e).__name__}: {e})") from e


def _parse(directory: Path, manifest: dict[str, Any]) -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    path = directory / MANIFEST
    server_round = manifest["round"]
    if not isinstance(server_round, int) or isinstance(server_round, bool) or server_round < 0:
        raise CheckpointError(f"{path}: round must be a non-negative integer, got {server_round!r}")
    name = manifest["tensors_file"]
    if not isinstance(name, str) or not _TENSORS.fullmatch(name):
        raise CheckpointError(
            f"{path}: tensors_file must be a tensors-rNNNNNN.safetensors name, got {name!r}"
        )
    tensors_path = directory / name
    if not tensors_path.is_file():
        raise CheckpointError(f"{tensors_path}: missing (named by {path})")
    blob = tensors_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != manifest["tensors_sha256"]:
        raise CheckpointError(
            f"{tensors_path}: its SHA-256 differs from the one in {path} (damaged or replaced)"
        )
    try:
        tensors = load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{tensors_path}: not a safetensors file ({e})") from e

    strategy = manifest["strategy"]
    groups = strategy["groups"]
    scalars = strategy["scalars"]
    extra = manifest["extra"]
    adapter_keys = manifest["adapter"]
    if not isinstance(groups, dict) or not isinstance(scalars, dict) or not isinstance(extra, dict):
        raise CheckpointError(f"{path}: strategy.groups, strategy.scalars and extra must be JSON objects")
    if not isinstance(strategy["name"], str) or not isinstance(adapter_keys, list):
        raise CheckpointError(f"{path}: strategy.name must be a string and adapter a list of keys")
    expected = {f"adapter/{k}" for k in adapter_keys}
    for group, keys in groups.items():
        if not isinstance(keys, list):
            raise CheckpointError(f"{path}: strategy group {group!r} must list its keys")
        expected |= {f"strategy/{group}/{k}" for k in keys}
    if set(tensors) != expected:
        missing, unknown = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise CheckpointError(
            f"{tensors_path}: tensors do not match {path} (missing: {', '.join(missing[:3]) or 'none'}; "
            f"unexpected: {', '.join(unknown[:3]) or 'none'})"
        )
    return Checkpoint(
        round=server_round,
        adapter={k: tensors[f"adapter/{k}"] for k in adapter_keys},
        strategy_name=strategy["name"],
        strategy=StrategyState(
            {g: {k: tensors[f"strategy/{g}/{k}"].numpy() for k in keys} for g, keys in groups.items()},
            scalars,
        ),
        extra=extra,
    )


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with open_private(tmp, "wb") as f:  # 0600: a checkpoint is the run's model, not for every user
        f.write(data)
    os.replace(tmp, target)  # a crash never leaves half a file under the real name
