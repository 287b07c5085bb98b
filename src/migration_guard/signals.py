"""Turn SIGTERM/SIGHUP into an exception so every ``with`` block cleans up.

SIGINT already raises ``KeyboardInterrupt``. ``shielded()`` keeps a second
signal from cutting a cleanup short: signals that arrive inside it are
delivered when it ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from .exceptions import Interrupted

_CAUGHT = (signal.SIGTERM, signal.SIGHUP)
_SHIELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def terminating_raises() -> Iterator[None]:
    """Inside this block SIGTERM and SIGHUP raise :class:`Interrupted`.

    Outside the main thread signal handlers cannot be installed; the block then
    changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in _CAUGHT}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back while the block runs (cleanup code)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SHIELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
