"""No module reaches into another module's private (``_name``) names: what another module may use
is public, so that a private helper can change without breaking a caller elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fedrai"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path, text: str | None = None) -> list[str]:
    """``file:line: what`` for every private name of another fedrai module that ``path`` (or ``text``
    read as that file) uses."""
    here = _module_name(path)
    source = path.read_text(encoding="utf-8") if text is None else text
    tree = ast.parse(source, filename=str(path))
    modules: dict[str, str] = {}  # local name -> fedrai module it is bound to
    found: list[str] = []
    where = path.relative_to(ROOT).as_posix()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fedrai"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if _private(alias.name) and node.module != here:
                    found.append(f"{where}:{node.lineno}: from {node.module} import {alias.name}")
                elif _is_module(target):
                    modules[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fedrai") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and modules[node.value.id] != here
            and _private(node.attr)
        ):
            found.append(f"{where}:{node.lineno}: {modules[node.value.id]}.{node.attr}")
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = ast.unparse(node.value)  # import fedrai.x; fedrai.x._y
            if base.startswith("fedrai.") and base != here and _is_module(base):
                found.append(f"{where}:{node.lineno}: {base}.{node.attr}")
    return found


def test_no_module_imports_a_private_name_from_another() -> None:
    hits = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in private_uses(path)]
    assert not hits, "private names used across modules:\n" + "\n".join(hits)


def test_the_check_catches_every_form() -> None:
    text = (
        "import fedrai.assets\n"
        "import fedrai.assets as a\n"
        "from fedrai import assets\n"
        "from fedrai.data.sources import _load_from_disk, read_records\n"
        "a._marker('x')\n"
        "assets._marker('x')\n"
        "fedrai.assets._marker('x')\n"
        "a.resolve('x')\n"
    )
    hits = private_uses(PACKAGE / "config" / "base.py", text)
    assert [h.split(": ", 1)[1] for h in hits] == [
        "from fedrai.data.sources import _load_from_disk",
        "fedrai.assets._marker",
        "fedrai.assets._marker",
        "fedrai.assets._marker",
    ]
    assert private_uses(PACKAGE / "assets.py", "import fedrai.assets as a\na._marker('x')\n") == []
