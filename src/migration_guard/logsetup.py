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
    handler.setFormatter(logging.Formatter("migration_guard: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
