"""The deploy guard's settings, read from the one :class:`~migration_guard.conf.Config`."""

from __future__ import annotations

import dataclasses

from ..conf import Config
from .schedule import Schedule, duration_ms


@dataclasses.dataclass(frozen=True)
class GuardSettings:
    """What ``manage.py migrate`` does about locks and long statements (docs/deploy.md)."""

    #: The longest one lock request may wait (the last attempt's); None: no lock_timeout.
    lock_timeout_ms: float | None = None
    lock_retries: int = 5
    #: A backoff name, or the nominal pauses in seconds.
    backoff: str | tuple[float, ...] = "exponential"
    statement_timeout_ms: float | None = None
    transaction_timeout_ms: float | None = None
    blocker_report: bool = True
    preflight_age_s: float | None = None

    @classmethod
    def from_config(cls, config: Config) -> GuardSettings:
        def ms(value: str | None) -> float | None:
            if not value:
                return None
            parsed = duration_ms(value)
            return parsed or None  # "0" turns a timeout off

        backoff = config.lock_retry_backoff
        preflight = ms(config.preflight_transaction_age)
        return cls(
            lock_timeout_ms=ms(config.lock_timeout),
            lock_retries=config.lock_retries,
            backoff=(
                backoff
                if isinstance(backoff, str)
                else tuple(duration_ms(item) / 1000 for item in backoff)
            ),
            statement_timeout_ms=ms(config.statement_timeout),
            transaction_timeout_ms=ms(config.transaction_timeout),
            blocker_report=config.blocker_report,
            preflight_age_s=preflight / 1000 if preflight else None,
        )

    @property
    def active(self) -> bool:
        """Anything to do: without these settings ``migrate`` is Django's own."""
        return any(
            value is not None
            for value in (
                self.lock_timeout_ms,
                self.statement_timeout_ms,
                self.transaction_timeout_ms,
                self.preflight_age_s,
            )
        )

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.lock_timeout_ms, self.lock_retries, self.backoff)
