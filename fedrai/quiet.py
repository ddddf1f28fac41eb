"""Route library warnings and progress bars away from the console, into a log file.

transformers, peft, torch and friends print deprecation notes, generation-flag warnings and
"Loading weights" bars that bury what a command has to say. Commands that print results
(``fedrai eval``, ``fedrai safety score``) run inside :func:`routed_warnings`: each warning goes
to the log file, and the command ends with one counted note saying where they went.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LIBRARY_LOGGERS = (
    "transformers",
    "peft",
    "torch",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "sentence_transformers",
    "tokenizers",
    "bitsandbytes",  # imported by peft: "Failed to load CPU gemm_4bit_forward ..." on every CPU
)


@dataclass
class RoutedWarnings:
    """How many warnings went to ``log_file`` (a note for the end of the command)."""

    log_file: Path
    count: int = 0

    def note(self) -> str | None:
        if not self.count:
            return None
        s = "" if self.count == 1 else "s"
        return f"{self.count} library warning{s} written to {self.log_file}"


class _CountingFileHandler(logging.FileHandler):
    def __init__(self, routed: RoutedWarnings) -> None:
        super().__init__(routed.log_file, encoding="utf-8", delay=True)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        self.routed = routed

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.routed.count += 1
        super().emit(record)


@contextlib.contextmanager
def routed_warnings(log_file: str | Path) -> Iterator[RoutedWarnings]:
    """Within the block: Python warnings and library log records go to ``log_file``, bars are off."""
    routed = RoutedWarnings(Path(log_file))
    routed.log_file.parent.mkdir(parents=True, exist_ok=True)
    bars = _transformers_bars(False)  # first: it sets up transformers' own console handler
    handler = _CountingFileHandler(routed)
    saved = []
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    previous_env = {"HF_HUB_DISABLE_PROGRESS_BARS": os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")}
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    with warnings.catch_warnings():
        warnings.simplefilter("default")

        def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
            routed.count += 1
            with open(routed.log_file, "a", encoding="utf-8") as f:
                f.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = show
        try:
            yield routed
        finally:
            for logger, handlers, propagate in saved:
                logger.handlers = handlers
                logger.propagate = propagate
            handler.close()
            for key, value in previous_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _transformers_bars(bars)


def _transformers_bars(enabled: bool) -> bool:
    """Switch transformers' own progress bars (e.g. "Loading weights"); return the previous state."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return True
    hf_logging.get_logger("transformers")  # configures the library root logger once
    before = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.enable_progress_bar()
    else:
        hf_logging.disable_progress_bar()
    return before
