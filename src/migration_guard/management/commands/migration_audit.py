"""``manage.py migration_audit``: find unsafe operations in the migrations a change brings."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from ...conf import SOURCES, build_config
from ...logsetup import configure_logging
from ...report import RenderOptions, formats, github, render
from ...report.escaping import for_log, one_line, stop_commands
from ..errors import command_errors

MACHINE_FORMATS = {"json", "sarif", "github", "gitlab"}


class Command(BaseCommand):
    help = (
        "Audit the migrations a change brings for PostgreSQL zero-downtime hazards: apply "
        "them to a throwaway PostgreSQL, watch the locks they take, and report each unsafe "
        "operation with the fix. Exit status: 0 clean, 1 findings at or above --fail-on, "
        "2 usage, project or environment error, 3 internal error (a bug to report)."
    )
    # Run in handle(), where a failing check is a project problem (exit 2), not findings.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("app_label", nargs="?", help="App whose migrations to audit.")
        parser.add_argument(
            "--skip-checks", action="store_true", help="Skip the project's system checks."
        )
        parser.add_argument(
            "migration_name", nargs="?", help="One migration of app_label (a prefix is enough)."
        )
        which = parser.add_argument_group("which migrations")
        which.add_argument(
            "--all",
            action="store_true",
            help="Every migration of first-party apps, each judged as a change of its own.",
        )
        which.add_argument(
            "--include-third-party",
            action="store_true",
            default=None,
            help="With --all: also apps installed from packages (site-packages).",
        )
        which.add_argument(
            "--since",
            metavar="GIT_REF",
            help="Migration files added or changed since the merge base with GIT_REF. "
            "This is the default, against the configured base ref, the remote's default "
            "branch, or main/master.",
        )
        which.add_argument(
            "--unapplied",
            action="store_true",
            help="Migrations not recorded in --database's django_migrations (read only).",
        )
        which.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="Database alias whose routers and backend apply (and that --unapplied "
            "reads). Its server is never written to. Default: %(default)s.",
        )
        out = parser.add_argument_group("output")
        out.add_argument(
            "--format",
            action="append",
            choices=formats(),
            help="Report format (repeatable; pair each with an --output). Default: text.",
        )
        out.add_argument(
            "--output",
            action="append",
            metavar="FILE",
            help="Write the report of the matching --format to FILE ('-' for stdout).",
        )
        out.add_argument(
            "--fail-on",
            choices=["error", "warning", "info"],
            help="Exit 1 when a finding is at or above this severity (default: error).",
        )
        out.add_argument(
            "--baseline",
            metavar="FILE",
            help="Report only findings not recorded in FILE (see --write-baseline); the "
            "report says how many the baseline hid.",
        )
        out.add_argument(
            "--write-baseline",
            metavar="FILE",
            help="Record every finding of this run in FILE (adopting on a project with "
            "history), then apply it: the run reports nothing new and exits 0.",
        )
        out.add_argument(
            "--no-github-annotations",
            action="store_true",
            help="In GitHub Actions (GITHUB_ACTIONS=true), do not print ::error/::warning "
            "annotations after the report.",
        )
        pg = parser.add_argument_group("PostgreSQL")
        pg.add_argument(
            "--postgres",
            choices=["auto", *SOURCES],
            help="Where the throwaway server comes from (default: auto, tries "
            + ", ".join(SOURCES)
            + " in that order).",
        )
        pg.add_argument(
            "--database-url",
            metavar="URL",
            help="An existing server to work on (a scratch database is created and dropped "
            "there). Also MIGRATION_GUARD_DATABASE_URL.",
        )
        pg.add_argument(
            "--allow-privileged-role",
            action="store_true",
            default=None,
            help="Accept a --database-url role that is a superuser, has CREATEROLE, or may "
            "run programs or read and write files on the server: the audited migrations run "
            "with its rights. Refused by default.",
        )
        pg.add_argument(
            "--postgres-image",
            metavar="IMAGE",
            help="Docker image for --postgres docker (e.g. postgres:16).",
        )
        pg.add_argument(
            "--postgres-version",
            type=int,
            metavar="MAJOR",
            help="Production's PostgreSQL major version; version-dependent advice follows it.",
        )
        pg.add_argument(
            "--keep", action="store_true", help="Keep the scratch database (for debugging)."
        )
        pg.add_argument(
            "--migration-timeout",
            metavar="DURATION",
            help="Stop a migration that runs longer than this (e.g. 90s, 10min; 0: no limit) "
            "and report it as a migration-timeout finding. Default: 10min.",
        )
        pg.add_argument(
            "--no-trace",
            action="store_true",
            help="Static rules only: apply the migrations without observing locks.",
        )
        pg.add_argument(
            "--no-cache",
            action="store_true",
            help="Rebuild the base state (every migration before the change) and run initdb "
            "instead of reusing or saving the cached ones (local and embedded servers cache "
            "them).",
        )
        data = parser.add_argument_group("production data")
        data.add_argument(
            "--seed-rows",
            type=int,
            metavar="N",
            help="Before tracing, insert N generated rows into each table that existed before "
            "the change and that it touches (and the tables their NOT NULL foreign keys "
            "reference), so traced durations are for tables with rows. Default: 0 (off).",
        )
        data.add_argument(
            "--stats-url",
            metavar="URL",
            help="Read-only connection to a production-like server (e.g. a replica): its "
            "major version is production's, and blocking findings show the table's rows, "
            "size and an estimate of how long reads or writes would wait. Nothing is "
            "written there. Also MIGRATION_GUARD_STATS_URL.",
        )

        rehearse = parser.add_argument_group("rehearsal (off by default; see docs/rehearsal.md)")
        rehearse.add_argument(
            "--rehearse",
            action="store_true",
            default=None,
            help="While each migration runs, send the previous release's queries (Django's "
            "ORM with the models before the change: SELECT, INSERT, UPDATE, DELETE on every "
            "table it touches) from other connections, and report how long they waited and "
            "which failed. Seeds the touched tables first. Costs time: the report says how "
            "much.",
        )
        rehearse.add_argument(
            "--rehearse-rows",
            type=int,
            metavar="N",
            help="Rows seeded per touched table (with --stats-url: the ceiling production's "
            "sizes are scaled down to). Default: 10000; --seed-rows wins when given.",
        )
        rehearse.add_argument(
            "--rehearse-connections",
            type=int,
            metavar="N",
            help="Connections of the previous release (default: 4).",
        )
        rehearse.add_argument(
            "--rehearse-rate",
            type=float,
            metavar="QPS",
            help="Queries per second per connection (default: 25).",
        )
        rehearse.add_argument(
            "--rehearse-threshold",
            metavar="DURATION",
            help="A query that takes this long or longer counts as blocked (default: 1s).",
        )
        rehearse.add_argument(
            "--rehearse-long-read",
            metavar="DURATION",
            help="Hold a read transaction on each touched table for this long as each "
            "migration starts, like a slow report, to show the lock queue (default: none).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        pairs = self._outputs(options)
        configure_logging(verbosity)
        with command_errors(
            self.stderr, verbosity=verbosity, traceback_=bool(options.get("traceback"))
        ):
            # Imported here: a missing PostgreSQL driver is then a clear exit 2, not a
            # traceback while Django loads the command.
            from ... import baseline as baselines
            from ...discovery import Selection
            from ...engine import AuditRequest, run_audit

            if not options.get("skip_checks"):
                self.check()

            config = build_config(
                {
                    "postgres": options["postgres"],
                    "database_url": options["database_url"],
                    "allow_privileged_role": options["allow_privileged_role"],
                    "postgres_image": options["postgres_image"],
                    "postgres_version": options["postgres_version"],
                    "fail_on": options["fail_on"],
                    "include_third_party": options["include_third_party"],
                    "trace": False if options["no_trace"] else None,
                    "cache": False if options["no_cache"] else None,
                    "seed_rows": options["seed_rows"],
                    "stats_url": options["stats_url"],
                    "migration_timeout": options["migration_timeout"],
                    "rehearse": options["rehearse"],
                    "rehearse_rows": options["rehearse_rows"],
                    "rehearse_connections": options["rehearse_connections"],
                    "rehearse_rate": options["rehearse_rate"],
                    "rehearse_threshold": options["rehearse_threshold"],
                    "rehearse_long_read": options["rehearse_long_read"],
                }
            )
            selection = Selection(
                app_label=options["app_label"],
                migration_name=options["migration_name"],
                all=options["all"],
                include_third_party=bool(options["include_third_party"]),
                since=options["since"],
                unapplied=options["unapplied"],
                database=options["database"],
            )
            request = AuditRequest(
                selection=selection,
                config=config,
                database=options["database"],
                keep=options["keep"],
                manage=_manage_invocation(),
            )
            baseline = baselines.load_baseline(options["baseline"]) if options["baseline"] else None
            quiet = verbosity == 0 or any(
                fmt in MACHINE_FORMATS and out == "-" for fmt, out in pairs
            )
            report = run_audit(request, self._progress(quiet, verbosity))
            report = baselines.process(report, baseline=baseline, write=options["write_baseline"])
            render_options = RenderOptions(
                style=self.style, verbosity=verbosity, manage=request.manage
            )
            for fmt, destination in pairs:
                text = render(report, fmt, render_options)
                if destination == "-":
                    if fmt == "text":  # text of the merge request: no workflow command
                        text = stop_commands(text, os.environ)
                    self.stdout.write(text, ending="")
                else:
                    _write(Path(destination), text)
                    if verbosity >= 1:
                        self.stderr.write(f"wrote {fmt} report to {destination}")
            if github.automatic(
                os.environ, [fmt for fmt, _ in pairs], options["no_github_annotations"]
            ):
                stream = self.stdout if github.on_stdout(pairs) else self.stderr
                stream.write(render(report, "github", render_options), ending="")
        if report.exit_code:
            sys.exit(report.exit_code)

    # -- helpers ------------------------------------------------------------------
    def _outputs(self, options: dict[str, Any]) -> list[tuple[str, str]]:
        fmts = options["format"] or ["text"]
        outs = options["output"] or []
        if len(outs) > len(fmts):
            raise CommandError(
                "more --output than --format options: pair each --output with a --format",
                returncode=2,
            )
        outs = outs + ["-"] * (len(fmts) - len(outs))
        if sum(1 for o in outs if o == "-") > 1:
            raise CommandError(
                "several formats would go to stdout: give each but one an --output FILE",
                returncode=2,
            )
        return list(zip(fmts, outs, strict=True))

    def _progress(self, quiet: bool, verbosity: int = 1) -> Any:
        started = time.monotonic()
        last = [0.0]
        stderr = self.stderr

        def progress(event: str, data: dict[str, Any]) -> None:
            if event == "running" and verbosity:  # the heartbeat, even with JSON on stdout
                app, name = data["key"]
                line = f"still applying {app}.{name} ({data['elapsed']:.0f} s)"
                stderr.write(for_log(one_line(line)))
                return
            if quiet:
                return
            now = time.monotonic()
            if event == "postgres" and (now - started > 3 or "(url: " in data["description"]):
                # on a server given by URL, always: whose rights the audited code runs with
                stderr.write(for_log(one_line(f"using {data['description']}")))
            if event == "migration" and now - started > 3 and now - last[0] >= 1:
                last[0] = now
                app, name = data["key"]
                line = f"[{data['index'] + 1}/{data['total']}] {app}.{name}"
                stderr.write(for_log(one_line(line)))

        return progress


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(
            f"cannot write the report to {path}: {exc.strerror or exc}. Choose another "
            "--output path (its folder must exist and be writable).",
            returncode=2,
        ) from exc


def _manage_invocation() -> str:
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "manage.py"
    if argv0 == "manage.py":
        return "python manage.py"
    if argv0 in ("django-admin", "django-admin.py"):
        return "django-admin"
    return "python manage.py"
