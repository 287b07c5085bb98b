"""Why the deploy guard stopped ``migrate``; each carries the exit status it stands for."""

from __future__ import annotations

from ..exceptions import MigrationGuardError

#: Exit status: the database was busy (locks); nothing half-applied, run it again later.
#: 75 is EX_TEMPFAIL of sysexits.h ("temporary failure, retry"); the package's 3 means a
#: bug of its own (management/errors.py).
EXIT_BUSY = 75
#: Exit status: a migration failed (here: statement_timeout ended a statement).
EXIT_FAILED = 1


class GuardStop(MigrationGuardError):
    """The deploy guard stopped migrate; ``returncode`` is the documented exit status."""

    returncode = EXIT_FAILED


class LockRetriesExhausted(GuardStop):
    """Every attempt of a migration or statement ended on its lock timeout (or pre-flight)."""

    returncode = EXIT_BUSY


class LockTimeoutNotRetried(GuardStop):
    """A lock timeout inside a transaction the migration opened itself: cannot be resumed."""

    returncode = EXIT_BUSY


class StatementTimedOut(GuardStop):
    """statement_timeout ended a statement (too long, not retried)."""

    returncode = EXIT_FAILED


class TransactionTimedOut(GuardStop):
    """transaction_timeout ended the session (PostgreSQL 17+; not retried)."""

    returncode = EXIT_FAILED


class PreflightBlocked(Exception):
    """Raised inside an atomic attempt to undo it: pre-flight found old conflicting locks.

    Internal: the retry loop catches it; it never leaves :mod:`migration_guard.deploy`.
    """
