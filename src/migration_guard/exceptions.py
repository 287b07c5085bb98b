"""The errors migration_guard raises on purpose.

Every message says what went wrong and what to do next; commands turn these
into ``CommandError`` (exit status 2) without a traceback.
"""

from __future__ import annotations


class MigrationGuardError(Exception):
    """Base class of every error raised on purpose by migration_guard."""


class ConfigurationError(MigrationGuardError):
    """A setting, pyproject value or command-line option is invalid."""


class PostgresUnavailable(MigrationGuardError):
    """No PostgreSQL server could be obtained from any allowed source."""


class ProviderError(MigrationGuardError):
    """A PostgreSQL source was found but failed to start or answer."""


class ScratchDatabaseError(MigrationGuardError):
    """The scratch database could not be created, used or dropped."""


class SelectionError(MigrationGuardError):
    """The migrations to audit could not be chosen (unknown app, bad git ref...)."""


class MigrationLoadError(MigrationGuardError):
    """The project's migrations could not be loaded (syntax error, bad dependency...)."""


class Interrupted(BaseException):
    """The process received SIGTERM or SIGHUP; raised so that cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StatsUnavailable(MigrationGuardError):
    """The --stats-url server could not be reached or read (sizes need it)."""
