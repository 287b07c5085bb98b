"""Check a written plan the way a reviewer would, on a real PostgreSQL.

1. *state*: Django's state after the new migrations equals the models (with the
   planner's models.py edits): ``makemigrations`` would find nothing left;
2. *round trip*: on a scratch database, the history before the change is
   applied, then the new migrations, then they are unapplied again;
3. *audit*: ``run_audit`` on the new migrations, together as one change, reports
   no error.

Steps whose SQL needs a newer PostgreSQL than the scratch server (PG18's NOT NULL
NOT VALID) make the round trip and the audit be skipped, saying so.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

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


@dataclasses.dataclass
class Verification:
    state_differences: list[str] = dataclasses.field(default_factory=list)
    round_trip_error: str | None = None
    audit_errors: list[str] = dataclasses.field(default_factory=list)
    audit_warnings: int = 0
    postgres: str | None = None
    skipped: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.state_differences or self.round_trip_error or self.audit_errors)


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


def verify(outcome: Any, progress: Any = None) -> Verification:
    request = outcome.request
    result = Verification()
    loader = load_graph()
    app = request.app_label
    if outcome.expected_state is not None:
        result.state_differences = state_differences(loader, app, outcome.expected_state)
    needs = max((s.needs_major for m in outcome.migrations for s in m.steps), default=12)
    config = request.config
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
        if progress:
            progress("round-trip", {"postgres": result.postgres})
        info = stack.enter_context(scratch_database(server, purpose="plan"))
        connection = stack.enter_context(connections_pointed_at(info, request.database))
        result.round_trip_error = _round_trip(connection, outcome)
    if progress:
        progress("audit", {})
    report = run_audit(
        AuditRequest(
            selection=Selection(keys=outcome.keys),
            config=config,
            database=request.database,
            manage=request.manage,
        )
    )
    for finding in report.findings:
        if finding.severity is Severity.ERROR:
            result.audit_errors.append(f"{finding.migration}: {finding.rule}: {finding.message}")
        elif finding.severity is Severity.WARNING:
            result.audit_warnings += 1
    return result


def _round_trip(connection: Any, outcome: Any) -> str | None:
    app = outcome.request.app_label
    keys = list(outcome.keys)
    start = [k for k in outcome.start_nodes]
    back = [k for k in start if k[0] == app] or [(app, None)]
    try:
        executor = MigrationExecutor(connection)
        if start:
            executor.migrate(start)
        executor.loader.build_graph()
        executor.migrate([keys[-1]])
        executor.loader.build_graph()
        executor.migrate(back)
    except Exception as exc:
        return database_error_text(exc)
    return None
