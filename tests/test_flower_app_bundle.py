"""`flwr run .` on this repository: the app bundle carries the config, not the package.

Flower packs only .py/.toml/.md/.json/.yaml files, so a packed ``fedrai/`` would lose its ``.npz``
safety heads and shadow the installed package: the ClientApp then failed on its first round. With
``fab-include`` the bundle holds ``pyproject.toml`` and the README, and the apps import the installed
fedrai, as ``fedrai run`` does.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from flwr.cli.build import build_fab_from_disk

ROOT = Path(__file__).resolve().parents[1]


def test_the_repository_bundle_holds_no_package_code() -> None:
    fab = build_fab_from_disk(ROOT)
    names = set(zipfile.ZipFile(io.BytesIO(fab)).namelist())
    assert {"pyproject.toml", "README.md"} <= names
    assert not any(n.startswith(("fedrai/", "tests/", "runs/")) for n in names), sorted(names)
