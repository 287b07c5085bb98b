"""Where the package's log goes when a command runs: stderr, by verbosity."""

from __future__ import annotations

import logging
import sys


def configure_logging(verbosity: int) -> None:
    """``migration_guard: ...`` lines on stderr; debug details from ``-v 2`` on.

    Machine output stays alone on stdout. A handler the project configured
    (LOGGING) is left alone.
    """
    logger = logging.getLogger("migration_guard")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_SafeFormatter("migration_guard: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


class _SafeFormatter(logging.Formatter):
    """Log lines carry names and paths of the merge request: control characters are
    escaped and no line starts a GitHub Actions workflow command."""

    def format(self, record: logging.LogRecord) -> str:
        from .report.escaping import for_log

        return for_log(super().format(record))
