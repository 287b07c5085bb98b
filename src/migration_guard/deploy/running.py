"""Whether the guarded ``migrate`` is running in this process, and its guards.

The app's ``pre_migrate`` fallback (which only sets session timeouts) stays
out of the way while it runs; the command reads the guards afterwards to say
where a signal landed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_trackers: list[list[Any]] = []


@contextlib.contextmanager
def guard_running(tracker: list[Any]) -> Iterator[None]:
    """Within the block, guards register in ``tracker`` (see :func:`register`)."""
    _trackers.append(tracker)
    try:
        yield
    finally:
        _trackers.remove(tracker)


def register(guard: Any) -> None:
    if _trackers:
        _trackers[-1].append(guard)


def is_running() -> bool:
    return bool(_trackers)
