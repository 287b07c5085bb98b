"""``manage.py plan_zero_downtime``: write the safe multi-step migrations for a change."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from ...conf import build_config
from ...logsetup import configure_logging
from ...planner import PlanRequest, run_plan
from ...planner.formatting import render_files, render_summary
from ...postgres.base import SOURCES
from ..errors import command_errors


class Command(BaseCommand):
    help = (
        "Write the zero-downtime version of a change: the app's model changes not yet in a "
        "migration (like makemigrations), or an existing unapplied migration (replaced), as "
        "safe migrations for this release plus a record of what a later release must do. "
        "Run it again after the deploy to write the next release. Exit status: 0 done, "
        "1 --check found a plan to write or verification failed, 2 usage, project or "
        "environment error, 3 internal error (a bug to report)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", help="App to plan.")
        parser.add_argument(
            "migration_name",
            nargs="?",
            help="An unapplied migration of app_label to replace (a prefix is enough).",
        )
        out = parser.add_argument_group("output")
        out.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the files (and models.py edits as a diff) instead of writing them.",
        )
        out.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit 1 when a plan would be written (for CI).",
        )
        out.add_argument("--name", help="Base name of the generated migrations.")
        plan = parser.add_argument_group("plan")
        plan.add_argument(
            "--next-release",
            action="store_true",
            help="Write the pending steps of the next release (the default when no model "
            "change is left and steps are pending).",
        )
        plan.add_argument(
            "--batch-size",
            type=int,
            metavar="ROWS",
            help="Rows per transaction of backfills (default: MIGRATION_GUARD batch_size, 1000).",
        )
        plan.add_argument(
            "--postgres-version",
            type=int,
            metavar="MAJOR",
            help="Production's PostgreSQL major version (default: MIGRATION_GUARD "
            "postgres_version, else 13 behaviour; 18 uses NOT NULL NOT VALID).",
        )
        plan.add_argument(
            "--lock-timeout",
            metavar="DURATION",
            help="lock_timeout the generated migrations set (default: MIGRATION_GUARD "
            "lock_timeout, else 5s).",
        )
        plan.add_argument(
            "--no-db-default",
            action="store_true",
            help="Write the Django 4.2 form (SeparateDatabaseAndState + RunSQL) even on "
            "Django 5.0+, never db_default.",
        )
        plan.add_argument(
            "--full-rename",
            action="store_true",
            help="Rename the table or column in the database too, in two releases (a view "
            "under the old table name; a column copied and kept in sync), instead of keeping "
            "the old name through db_table / db_column.",
        )
        plan.add_argument(
            "--no-column-swap",
            action="store_true",
            help="Type changes: the model moves to the new column (db_column) instead of the "
            "columns swapping names, so no column changes type under running code "
            "(server-side prepared statements keep working).",
        )
        plan.add_argument(
            "--no-renames",
            action="store_true",
            help="Never assume a field or model was renamed (the autodetector asks otherwise).",
        )
        plan.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Database alias whose backend the SQL is written for and that is read "
            "(read only) to check a migration is not applied. Default: %(default)s.",
        )
        pg = parser.add_argument_group("verification")
        pg.add_argument(
            "--no-verify",
            action="store_true",
            help="Do not verify the written plan (audit, round trip, state) on PostgreSQL.",
        )
        pg.add_argument(
            "--postgres",
            choices=["auto", *SOURCES],
            help="Where the throwaway verification server comes from (default: auto).",
        )
        pg.add_argument("--database-url", metavar="URL", help="An existing server to verify on.")
        pg.add_argument(
            "--postgres-image", metavar="IMAGE", help="Docker image (--postgres docker)."
        )
        pg.add_argument(
            "--no-rehearse",
            action="store_true",
            help="Verify without the previous release's traffic (migration_audit --rehearse), "
            "which otherwise runs while each new migration is audited: the plan fails "
            "verification if one of its queries fails or waits past the threshold.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"] and options["check"]:
            raise CommandError("choose one of --dry-run and --check", returncode=2)
        mode = "check" if options["check"] else "dry-run" if options["dry_run"] else "write"
        verbosity = int(options["verbosity"])
        configure_logging(verbosity)
        # A signal reaches this point only before any file was written: once files are
        # staged, the planner restores them itself and its outcome says what it restored.
        with command_errors(
            self.stderr,
            verbosity=verbosity,
            traceback_=bool(options.get("traceback")),
            interrupted="nothing was written",
        ):
            config = build_config(
                {
                    "postgres": options["postgres"],
                    "database_url": options["database_url"],
                    "postgres_image": options["postgres_image"],
                    "postgres_version": options["postgres_version"],
                    "batch_size": options["batch_size"],
                    "lock_timeout": options["lock_timeout"],
                }
            )
            request = PlanRequest(
                app_label=options["app_label"],
                migration_name=options["migration_name"],
                config=config,
                name=options["name"],
                mode=mode,
                next_release=options["next_release"],
                verify=not options["no_verify"],
                rehearse=not options["no_rehearse"],
                use_db_default=False if options["no_db_default"] else None,
                assume_renames=not options["no_renames"],
                full_rename=options["full_rename"],
                column_swap=not options["no_column_swap"],
                database=options["database"],
                manage=_manage_invocation(),
            )
            outcome = run_plan(request, self._progress(verbosity))
        root = Path.cwd()
        if mode == "dry-run" and outcome.changes:
            self.stdout.write(render_files(outcome.changes, root), ending="")
        if int(options["verbosity"]) >= 1 or outcome.exit_code:
            self.stdout.write(render_summary(outcome, root), ending="")
        if outcome.exit_code:
            sys.exit(outcome.exit_code)

    def _progress(self, verbosity: int) -> Any:
        stderr = self.stderr

        def progress(event: str, data: dict[str, Any]) -> None:
            if verbosity < 2:
                return
            if event == "written":
                stderr.write(f"wrote {len(data['changes'])} file(s); verifying before keeping them")
            elif event == "import-check":
                stderr.write("verifying: importing the project in a fresh process")
            elif event == "round-trip":
                stderr.write(f"verifying on {data['postgres']}: forward and backward")
            elif event == "data":
                stderr.write("verifying: rows of the previous release, seeded and compared")
            elif event == "audit":
                rehearsal = (
                    ", the previous release's traffic running" if data.get("rehearse") else ""
                )
                stderr.write(f"verifying: audit of the new migrations{rehearsal}")

        return progress


def _manage_invocation() -> str:
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "manage.py"
    if argv0 in ("django-admin", "django-admin.py"):
        return "django-admin"
    return "python manage.py"
