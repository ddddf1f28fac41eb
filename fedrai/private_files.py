"""Files only their owner may read: client texts (audit, guarded rows, CAI records) and checkpoints.

Run dirs live on shared hosts; a client's original prompts and responses must not be world-readable
whatever the umask. Dirs are made 0700 and files 0600, also when they already existed with wider modes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) and make ``path`` itself 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def open_private(path: str | Path, mode: str = "a", encoding: str | None = "utf-8") -> IO:
    """``open(path, mode)`` for writing, the file created (or narrowed to) 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)
    except BaseException:
        os.close(fd)
        raise


def write_private_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically (temp file + rename) into a 0600 file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, "w") as f:
        f.write(text)
    tmp.replace(path)
