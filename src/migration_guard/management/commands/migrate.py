"""``manage.py migrate`` with the deploy guard (docs/deploy.md).

Django's own command, unchanged, unless ``MIGRATION_GUARD`` (or an option
below) sets ``lock_timeout``, ``statement_timeout``, ``transaction_timeout``
or ``preflight_transaction_age``: then each migration is applied by the deploy
guard (:mod:`migration_guard.deploy`). An app command of the same name
replaces Django's, as ``django.contrib.staticfiles`` does for ``runserver``;
the check ``migration_guard.W001`` warns when another app's ``migrate`` wins.

Exit status: 0 applied; 1 a migration failed (Django's error, or
statement_timeout ended a statement); 2 bad settings or options, or a signal;
75 (EX_TEMPFAIL) the database was busy: locks could not be had within the
retries, nothing half-applied, run it again later.
"""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands import migrate as django_migrate

from ...conf import build_config
from ...deploy import messages
from ...deploy.errors import GuardStop
from ...deploy.executor import guarded_migrate_command
from ...deploy.running import guard_running
from ...deploy.settings import GuardSettings
from ...exceptions import Interrupted, MigrationGuardError
from ...logsetup import configure_logging
from ...signals import terminating_raises


class Command(django_migrate.Command):
    help = (
        f"{django_migrate.Command.help} With migration_guard's settings, lock waits are bounded "
        "and retried, and whoever is in the way is named (docs/deploy.md)."
    )

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        group = parser.add_argument_group(
            "migration_guard deploy guard",
            "Override MIGRATION_GUARD for this run (docs/deploy.md).",
        )
        group.add_argument(
            "--lock-timeout",
            help='Longest wait for one lock, the last attempt\'s (PostgreSQL duration: "2s").',
        )
        group.add_argument(
            "--lock-retries", type=int, help="Retries after a lock timeout (default 5)."
        )
        group.add_argument(
            "--lock-retry-backoff",
            help="Pauses between attempts: exponential (default), linear, constant, or a "
            'comma-separated list of durations ("1s,5s,30s").',
        )
        group.add_argument("--statement-timeout", help="Longest any statement may run.")
        group.add_argument(
            "--transaction-timeout", help="Longest any transaction may last (PostgreSQL 17+)."
        )
        group.add_argument(
            "--preflight-transaction-age",
            help="Do not queue a blocking lock behind transactions older than this.",
        )
        group.add_argument(
            "--no-blocker-report",
            action="store_true",
            help="Do not name the backends in the way on a lock timeout.",
        )
        group.add_argument(
            "--no-guard",
            action="store_true",
            help="Django's migrate exactly, whatever MIGRATION_GUARD says.",
        )

    def handle(self, *args: Any, **options: Any) -> Any:
        if options.get("no_guard"):
            return super().handle(*args, **options)
        backoff = options.get("lock_retry_backoff")
        if backoff and "," in backoff:
            backoff = [part.strip() for part in backoff.split(",") if part.strip()]
        try:
            config = build_config(
                {
                    "lock_timeout": options.get("lock_timeout"),
                    "lock_retries": options.get("lock_retries"),
                    "lock_retry_backoff": backoff,
                    "statement_timeout": options.get("statement_timeout"),
                    "transaction_timeout": options.get("transaction_timeout"),
                    "preflight_transaction_age": options.get("preflight_transaction_age"),
                    "blocker_report": False if options.get("no_blocker_report") else None,
                }
            )
            settings = GuardSettings.from_config(config)
        except MigrationGuardError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if not settings.active:
            return super().handle(*args, **options)
        configure_logging(options["verbosity"])
        self._open_line: str | None = None
        tracker: list[Any] = []
        try:
            with (
                guard_running(tracker),
                guarded_migrate_command(django_migrate, settings, self._end_open_line),
                terminating_raises(),
            ):
                return super().handle(*args, **options)
        except GuardStop as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from None
        except Interrupted as exc:
            raise CommandError(self._interrupted(exc.signum, tracker), returncode=2) from None
        except KeyboardInterrupt:
            raise CommandError(
                self._interrupted(int(signal.SIGINT), tracker), returncode=2
            ) from None

    def _interrupted(self, signum: int, tracker: list[Any]) -> str:
        guard = next((g for g in tracker if g.interrupted_pause), None)
        if guard is None:
            return messages.INTERRUPTED.format(signum=signum, where=messages.INTERRUPTED_OTHER)
        text = messages.INTERRUPTED.format(
            signum=signum, where=messages.INTERRUPTED_PAUSE.format(unit=guard.interrupted_pause)
        )
        if guard.interrupted_invalid:
            text += ". " + messages.INVALID_LEFT.format(names=", ".join(guard.interrupted_invalid))
        return text

    # Django prints "  Applying app.0002_x..." and " OK" on one line; a guard log line in
    # between (stderr) ends that line first, and the line is printed again before " OK".
    def migration_progress_callback(
        self, action: str, migration: Any = None, fake: bool = False
    ) -> None:
        if action in ("apply_start", "unapply_start"):
            self._open_line = action
            self._broken = False
        elif action in ("apply_success", "unapply_success") and getattr(self, "_broken", False):
            verb = "Applying" if action == "apply_success" else "Unapplying"
            self.stdout.write(f"  {verb} {migration}...", ending="")
            self.stdout.flush()
            self._broken = False
        if action in ("apply_success", "unapply_success"):
            self._open_line = None
        super().migration_progress_callback(action, migration, fake)

    def _end_open_line(self) -> None:
        if getattr(self, "_open_line", None) and self.verbosity >= 1:
            self.stdout.write("")
            self.stdout.flush()
            self._open_line = None
            self._broken = True
