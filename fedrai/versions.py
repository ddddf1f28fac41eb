"""The fedrai version and the schema versions of what a run writes (checkpoint, config, summary).

A file written by a newer fedrai may hold fields this one does not know; reading it must say so
instead of guessing. Bump a schema version when the meaning or layout of that file changes.
"""

from __future__ import annotations

from importlib import metadata

CHECKPOINT_SCHEMA = 1
RUN_FILES_SCHEMA = 1  # config.toml's [fedrai] table and summary.json


def fedrai_version() -> str:
    """The installed distribution's version; ``unknown`` when run from a bare source tree."""
    try:
        return metadata.version("fedrai")
    except metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "unknown"


def newer_schema_message(what: str, found: int, supported: int, writer: str) -> str:
    """One line for a file from a newer fedrai: which file, which versions, what to do."""
    return (
        f"{what} has schema version {found} (written by fedrai {writer}); this fedrai "
        f"({fedrai_version()}) reads schema version {supported} or older: upgrade fedrai to read it"
    )
