"""Check a written plan the way a reviewer would, on a real PostgreSQL and on real rows.

1. *state*: Django's state after the new migrations equals the models (with the
   planner's models.py edits);
2. *fresh process*: a new Python process imports the project (every models.py,
   the new migrations) and computes what ``makemigrations --check`` computes for
   the app: an edit that does not import, or leaves a difference, fails here;
3. *round trip on data* (:mod:`.proof`): on a scratch database the history
   before the plan is applied, the touched tables get edge rows written by the
   previous release's models, then the new migrations run one by one (the
   previous release's INSERT/SELECT/UPDATE/DELETE after each), back, and
   forward again; every pre-existing value must survive each trip;
4. *audit*: ``run_audit`` on the new migrations, together as one change, reports
   no error (with the scratch server's own function volatility);
5. *rehearsal* (unless ``--no-rehearse``): that audit runs with the previous
   release's traffic (:mod:`migration_guard.rehearse`): while each new migration
   runs on seeded tables, the models of the state before the plan send their
   queries on other connections; none may fail and none may wait the threshold
   or longer (:func:`~migration_guard.rehearse.steps.previous_release_problems`
   names each kind of query that did, with PostgreSQL's error). Its settings are
   the audit's (``rehearse_rows``, ``rehearse_threshold``... in ``MIGRATION_GUARD``).

Steps whose SQL needs a newer PostgreSQL than the scratch server (PG18's NOT NULL
NOT VALID) make the round trip and the audit be skipped, saying so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.questioner import MigrationQuestioner

from ..collect import database_error_text
from ..discovery import Selection, load_graph
from ..djangodb import connections_pointed_at
from ..engine import AuditRequest, postgres_options, run_audit
from ..findings import Severity
from ..postgres import open_server, version_text
from ..postgres.base import major_of
from ..postgres.scratch import scratch_database
from ..rehearse.steps import TRAFFIC_RULES, longest_wait_ms, previous_release_problems
from ..results import RehearsalSummary
from .proof import DataProof, ProofResult

#: Seconds the fresh process may take to import the project.
FRESH_TIMEOUT = 300

#: Run in a new interpreter: import everything, then makemigrations --check's question.
FRESH_CHECK = """
import json, sys
import django
django.setup()
from django.apps import apps
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
from django.db.migrations.state import ProjectState
app = sys.argv[1]
loader = MigrationLoader(None, ignore_no_migrations=True)
detector = MigrationAutodetector(
    loader.project_state(),
    ProjectState.from_apps(apps),
    NonInteractiveMigrationQuestioner(specified_apps={app}, dry_run=True),
)
changes = detector.changes(graph=loader.graph, trim_to_apps={app}, convert_apps={app})
print(json.dumps([str(op.describe()) for m in changes.get(app, []) for op in m.operations]))
"""


@dataclasses.dataclass
class Verification:
    state_differences: list[str] = dataclasses.field(default_factory=list)
    #: The fresh process could not import the project (the end of its traceback).
    import_error: str | None = None
    #: What makemigrations --check found in the fresh process.
    fresh_differences: list[str] = dataclasses.field(default_factory=list)
    round_trip_error: str | None = None
    #: Rows that changed, statements of the previous release that failed.
    data_errors: list[str] = dataclasses.field(default_factory=list)
    data: ProofResult | None = None
    audit_errors: list[str] = dataclasses.field(default_factory=list)
    audit_warnings: int = 0
    #: The rehearsal: its summary (None: not rehearsed), the longest wait of a query of the
    #: previous release, and what it suffered, one line each (a kind of query that failed,
    #: with PostgreSQL's error; a table whose queries waited past the threshold).
    rehearsal: RehearsalSummary | None = None
    rehearsal_longest_ms: float = 0.0
    rehearsal_problems: list[str] = dataclasses.field(default_factory=list)
    postgres: str | None = None
    skipped: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.state_differences
            or self.import_error
            or self.fresh_differences
            or self.round_trip_error
            or self.data_errors
            or self.audit_errors
            or self.rehearsal_problems
        )


def state_differences(loader: Any, app_label: str, expected: Any) -> list[str]:
    """What makemigrations would still write for ``app_label``, described."""
    autodetector = MigrationAutodetector(
        loader.project_state(),
        expected,
        MigrationQuestioner(specified_apps={app_label}, dry_run=True),
    )
    changes = autodetector.changes(
        graph=loader.graph, trim_to_apps={app_label}, convert_apps={app_label}
    )
    return [str(op.describe()) for m in changes.get(app_label, []) for op in m.operations]


def fresh_process_check(app_label: str) -> tuple[str | None, list[str], str | None]:
    """(import error, makemigrations differences, why skipped) from a new interpreter."""
    module = getattr(settings, "SETTINGS_MODULE", None)
    if not module:
        return None, [], "the fresh-process import check needs a settings module (not configure())"
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = module
    paths = [p or os.getcwd() for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", FRESH_CHECK, app_label],
            env=env,
            cwd=os.getcwd(),
            capture_output=True,
            text=True,
            timeout=FRESH_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"importing the project took more than {FRESH_TIMEOUT}s", [], None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return "\n".join(lines[-4:]) or f"exit status {proc.returncode}", [], None
    try:
        differences = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return f"unexpected output: {proc.stdout[-300:]!r}", [], None
    return None, [str(d) for d in differences], None


def verify(outcome: Any, progress: Any = None) -> Verification:
    request = outcome.request
    result = Verification()
    progress = progress or (lambda event, data: None)
    loader = load_graph()
    app = request.app_label
    if outcome.expected_state is not None:
        result.state_differences = state_differences(loader, app, outcome.expected_state)
    progress("import-check", {})
    result.import_error, result.fresh_differences, skipped = fresh_process_check(app)
    if skipped:
        result.skipped.append(skipped)
    needs = max((s.needs_major for m in outcome.migrations for s in m.steps), default=12)
    config = request.config
    progress("server", {})
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(open_server(postgres_options(config)))
        major = major_of(server.server_version)
        result.postgres = f"PostgreSQL {version_text(server.server_version)} ({server.source})"
        if major < needs:
            result.skipped.append(
                f"the plan uses PostgreSQL {needs} syntax and the scratch server is "
                f"{version_text(server.server_version)}: round trip and audit skipped (use "
                f"--postgres embedded, --postgres-image postgres:{needs} or a PG{needs} "
                "--database-url)"
            )
            return result
        progress("round-trip", {"postgres": result.postgres})
        info = stack.enter_context(scratch_database(server, purpose="plan"))
        connection = stack.enter_context(connections_pointed_at(info, request.database))
        result.round_trip_error = _round_trip(connection, outcome, result, progress)
    rehearse = request.rehearse and config.trace
    if request.rehearse and not config.trace:
        result.skipped.append(
            "the previous release's traffic (rehearsal): it needs the trace, which "
            "MIGRATION_GUARD turns off (trace = False)"
        )
    progress("audit", {"rehearse": rehearse})
    report = run_audit(
        AuditRequest(
            selection=Selection(keys=outcome.keys),
            config=dataclasses.replace(config, rehearse=rehearse),
            database=request.database,
            manage=request.manage,
            code_tables=_code_tables(outcome),
        )
    )
    rehearsed = report.rehearsal is not None
    for finding in report.findings:
        if rehearsed and finding.rule in TRAFFIC_RULES:
            continue  # said below, query by query
        if finding.severity is Severity.ERROR:
            result.audit_errors.append(f"{finding.migration}: {finding.rule}: {finding.message}")
        elif finding.severity is Severity.WARNING:
            result.audit_warnings += 1
    if rehearsed:
        result.rehearsal = report.rehearsal
        result.rehearsal_longest_ms = longest_wait_ms(report)
        result.rehearsal_problems = previous_release_problems(report)
        quiet = [m.name for m in report.migrations if m.rehearsal is None and not m.error]
        if quiet:
            result.skipped.append(
                "the previous release's traffic during "
                + ", ".join(quiet)
                + ": its operations name no table of the previous release (a new table has "
                "no traffic yet; code in RunPython cannot be seen through before it runs), "
                "so no query was sent then"
            )
    return result


def _code_tables(outcome: Any) -> dict[tuple[str, str], frozenset[str]]:
    """Migration key -> the tables its backfills fill or rewrite: code (RunPython) the
    rehearsal cannot see through, so it is told where to send the previous release's
    traffic while that code runs."""
    out: dict[tuple[str, str], frozenset[str]] = {}
    for migration in outcome.migrations:
        tables = {
            table for step in migration.steps for table, _ in (*step.fills, *(step.rewrites or ()))
        }
        if tables:
            out[migration.key] = frozenset(tables)
    return out


def _touched(
    outcome: Any,
) -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[tuple[str, str]] | None]:
    """(app, model) pairs the plan's steps change or read, the (table, column) it fills, and
    what operations carried over as written may change (None: anything)."""
    models: set[tuple[str, str]] = set()
    fills: set[tuple[str, str]] = set()
    rewrites: set[tuple[str, str]] | None = set()
    for migration in outcome.migrations:
        for step in migration.steps:
            for key in step.models:
                parts = key.split(".")
                if len(parts) >= 2:
                    models.add((parts[0], parts[1]))
            fills |= set(step.fills)
            if step.rewrites is None:
                rewrites = None
            elif rewrites is not None:
                rewrites |= set(step.rewrites)
    return models, fills, rewrites


def _round_trip(connection: Any, outcome: Any, result: Verification, progress: Any) -> str | None:
    """Forward, back and forward again on rows; None when every migration ran."""
    app = outcome.request.app_label
    keys = list(outcome.keys)
    start = list(outcome.start_nodes)
    back = [k for k in start if k[0] == app] or [(app, None)]
    try:
        executor = MigrationExecutor(connection)
        if start:
            executor.migrate(start)
        loader = executor.loader
        start_state = loader.project_state(nodes=start, at_end=True) if start else None
        end_state = loader.project_state(nodes=[keys[-1]], at_end=True)
        touched, fills, rewrites = _touched(outcome)
        proof = None
        if rewrites is None:
            # The migration runs its own code (RunPython): it was written for the history's
            # rows, and edge rows could break it for reasons that are not the plan's.
            result.skipped.append(
                "rows: the plan carries the migration's own code (RunPython), so the round "
                "trip runs on the history's own rows, without seeded edge rows"
            )
        elif start_state is not None:
            progress("data", {})
            proof = DataProof(connection, start_state, end_state, touched, fills, rewrites)
            result.data = proof.result
            proof.seed()
            before = proof.snapshot()
        for key in keys:
            executor.loader.build_graph()
            executor.migrate([key])
            if proof is not None:
                proof.probe(f"after {key[1]}")
        if proof is not None:
            forward = proof.snapshot()
            proof.compare(before, forward, "after the plan", fills=True)
        executor.loader.build_graph()
        executor.migrate(back)
        if proof is not None:
            proof.compare(before, proof.snapshot(), "after migrating back", fills=True)
            proof.probe("after migrating back")
        executor.loader.build_graph()
        executor.migrate([keys[-1]])
        if proof is not None:
            proof.compare(forward, proof.snapshot(), "after migrating forward again", fills=False)
            proof.dropped_notes()
            result.data_errors = list(proof.result.errors)
    except Exception as exc:
        return database_error_text(exc)
    # A plan in the middle of a history: the migrations after it must still apply on top
    # (on the history's own rows: the edge rows were made for the plan's states only).
    leaves = sorted(k for k in executor.loader.graph.leaf_nodes(app) if k != keys[-1])
    if leaves and proof is not None and not proof.remove_seeded():
        result.skipped.append("the migrations after the plan: the seeded rows stayed in the way")
        return None
    if leaves:
        try:
            executor.loader.build_graph()
            executor.migrate(leaves)
        except Exception as exc:
            return f"the migrations after the plan fail on top of it: {database_error_text(exc)}"
    return None
