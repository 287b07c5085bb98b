"""Durations and the retry schedule: how long each attempt waits for a lock, and the pauses.

In the spirit of GitLab's ``with_lock_retries``: the first attempts wait only
briefly for their locks, so that traffic queued behind the migration's lock
request is stalled for a short moment at most; later attempts wait longer,
and between attempts the migration holds nothing and pauses (longer each
time, with jitter) so that the transaction in the way can finish.

The numbers, with ``lock_timeout`` as ``T`` and ``lock_retries`` as ``N``:

* attempt ``k`` (``0 … N``) waits at most ``T · 8^(k/N − 1)`` for a lock: an
  eighth of ``T`` first, growing geometrically, the full ``T`` on the last
  attempt (``N = 0``: one attempt, waiting ``T``). ``lock_timeout`` is thus the
  longest the migration ever makes production queue behind one lock request.
* the pause before attempt ``k + 1`` follows ``lock_retry_backoff``; each
  pause is drawn at random between half and one and a half times its nominal
  value, so that several processes retrying at once spread out.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re

#: A PostgreSQL duration: a number and an optional unit (no unit: milliseconds).
DURATION_RE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>us|ms|s|min|h|d)?$")
_UNIT_MS = {
    "us": 0.001,
    "ms": 1.0,
    "s": 1000.0,
    "min": 60_000.0,
    "h": 3_600_000.0,
    "d": 86_400_000.0,
}

#: The backoff names ``lock_retry_backoff`` accepts, with their nominal pauses in seconds.
BACKOFFS = ("exponential", "linear", "constant")
#: No nominal pause grows beyond this (seconds).
MAX_PAUSE_S = 60.0
#: The first attempt waits this fraction of ``lock_timeout``.
FIRST_TIMEOUT_FRACTION = 1 / 8
#: No attempt waits less than this for a lock (milliseconds); ``0`` would mean "forever".
MIN_TIMEOUT_MS = 10
#: Jitter: a pause is its nominal value times a factor drawn from this range.
JITTER = (0.5, 1.5)


def duration_ms(text: str) -> float:
    """Milliseconds in a PostgreSQL duration such as ``"2s"``, ``"500ms"``, ``"1min"``, ``"250"``.

    Raises ``ValueError`` for anything else.
    """
    match = DURATION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"not a PostgreSQL duration: {text!r}")
    return float(match["number"]) * _UNIT_MS[match["unit"] or "ms"]


def format_ms(ms: float) -> str:
    """A duration for people and for ``SET``: ``"250ms"``, ``"2s"``, ``"1.5s"``, ``"3min"``."""
    if ms < 1000:
        return f"{round(ms)}ms"
    if ms < 60_000:
        seconds = round(ms / 1000, 1)
        return f"{seconds:g}s"
    minutes = ms / 60_000
    if minutes == int(minutes):
        return f"{int(minutes)}min"
    return f"{round(ms / 1000)}s"


def nominal_pause_s(backoff: str | tuple[float, ...], retry: int) -> float:
    """The pause before retry number ``retry`` (1 for the first retry), before jitter."""
    if retry < 1:
        raise ValueError("retries are numbered from 1")
    if isinstance(backoff, tuple):
        return backoff[min(retry, len(backoff)) - 1]
    if backoff == "exponential":  # 1 s, 2 s, 4 s ... up to a minute
        return min(MAX_PAUSE_S, 2.0 ** (retry - 1))
    if backoff == "linear":  # 5 s, 10 s, 15 s ... up to a minute
        return min(MAX_PAUSE_S, 5.0 * retry)
    if backoff == "constant":
        return 5.0
    raise ValueError(f"unknown backoff {backoff!r}")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Lock timeouts and pauses of one retried unit (a migration, a statement, an operation)."""

    #: ``lock_timeout`` in milliseconds: the last attempt's wait; None when not set.
    lock_timeout_ms: float | None
    retries: int
    #: A backoff name, or the nominal pauses in seconds (the last one repeats).
    backoff: str | tuple[float, ...] = "exponential"

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def timeout_ms(self, attempt: int) -> int | None:
        """How long attempt ``attempt`` (0-based) may wait for a lock, in whole milliseconds."""
        if self.lock_timeout_ms is None:
            return None
        if not 0 <= attempt <= self.retries:
            raise ValueError(f"attempt {attempt} is outside 0..{self.retries}")
        ceiling = self.lock_timeout_ms
        if self.retries == 0:
            value = ceiling
        else:
            exponent = attempt / self.retries - 1  # -1 .. 0
            value = ceiling * (1 / FIRST_TIMEOUT_FRACTION) ** exponent
        # Never above the ceiling, never 0 (which would mean no timeout at all).
        return max(min(MIN_TIMEOUT_MS, math.ceil(ceiling)), min(math.ceil(ceiling), round(value)))

    def pause_s(self, retry: int, rng: random.Random) -> float:
        """The jittered pause before retry ``retry`` (1-based), in seconds."""
        low, high = JITTER
        return nominal_pause_s(self.backoff, retry) * rng.uniform(low, high)
