"""Apply one migration for real and record, per operation, what it executed.

The migration runs through Django's own executor on the scratch database, so
introspection (constraint names, AlterUniqueTogether, RemoveField of a
ForeignKey...) works as in production. Three hooks keep the link between each
operation and its statements, with no guessing from text:

* each top-level operation's ``database_forwards`` is wrapped to know which
  operation is running, with the project states before and after it;
* the schema editor's ``execute`` marks the SQL Django emits (what ``sqlmigrate``
  shows, RunSQL included), and SQL deferred to the end of the migration is
  traced back to the operation that queued it;
* a connection ``execute_wrapper`` sees every query, RunPython's ORM queries
  included, times it, and lets the tracer observe Postgres after it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from django.db import DatabaseError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.operations.fields import FieldOperation, RenameField
from django.db.migrations.operations.models import RenameModel
from django.db.migrations.state import ProjectState

from . import sqlfacts
from .findings import OperationRef
from .lineage import Names
from .source import Ignore, MigrationSource, class_ignores, read_migration_source

#: Where a statement came from.
SCHEMA = "schema"  # schema_editor.execute: Django's DDL and RunSQL
DEFERRED = "deferred"  # deferred_sql run when the migration's schema editor exits
ORM = "orm"  # any other query: RunPython code, introspection


@dataclasses.dataclass
class Observation:
    """What Postgres showed after a statement (or an operation, for RunPython)."""

    #: (relation, mode) pairs newly held on relations that existed before the change.
    locks: tuple[tuple[str, str], ...] = ()
    #: Relations whose file changed (table rewrite, index rebuild).
    rewrites: tuple[str, ...] = ()
    #: (table, sequential scans started).
    scans: tuple[tuple[str, int], ...] = ()
    #: "transaction" (exact, read inside the transaction) or "sampled" (second connection).
    method: str = "transaction"
    #: Every (relation, mode) held after the statement, including earlier ones of the
    #: same transaction: a statement runs under all of them.
    held: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass
class ExecutedStatement:
    sql: str
    op_index: int | None
    origin: str
    duration_ms: float = 0.0
    observation: Observation | None = None
    error: str | None = None
    #: Ran outside any transaction (non-atomic migration).
    autocommit: bool = False
    #: Order of execution within the migration (deferred SQL runs after every operation).
    seq: int = 0
    #: Pre-existing tables when it ran (current name -> name at the start of the change),
    #: and right after it (a rename changes the name).
    existing: Names | None = None
    existing_after: Names | None = None

    @cached_property
    def facts(self) -> sqlfacts.SqlStatement:
        return sqlfacts.parse_one(self.sql)


@dataclasses.dataclass
class OperationRecord:
    index: int
    operation: Any
    description: str
    line: int | None
    ignores: tuple[Ignore, ...] = ()
    statements: list[ExecutedStatement] = dataclasses.field(default_factory=list)
    #: Queries that were not emitted DDL: RunPython's ORM work (counted, first ones kept).
    orm_statements: list[ExecutedStatement] = dataclasses.field(default_factory=list)
    orm_count: int = 0
    duration_ms: float = 0.0
    executed: bool = False
    #: Model/field facts computed from the project states around the operation.
    table: str | None = None
    old_table: str | None = None
    column: str | None = None
    old_column: str | None = None
    old_field: Any = None
    new_field: Any = None
    old_type: str | None = None
    new_type: str | None = None
    #: Lock observation for the whole operation (RunPython in a transaction).
    observation: Observation | None = None
    from_state: ProjectState | None = None
    to_state: ProjectState | None = None
    #: False when the project's routers skip the operation on the audited alias: it does
    #: nothing there, so nothing about it is judged there.
    routed: bool = True
    #: Pre-existing tables when the operation started (see :mod:`migration_guard.lineage`),
    #: and when its own statements were done.
    existing: Names | None = None
    existing_after: Names | None = None

    @property
    def kind(self) -> str:
        return type(self.operation).__name__

    @property
    def ref(self) -> OperationRef:
        return OperationRef(self.index, self.description, self.line, self.kind)

    @property
    def sql(self) -> list[str]:
        return [s.sql for s in self.statements]

    @property
    def facts(self) -> list[sqlfacts.SqlStatement]:
        return [s.facts for s in self.statements]

    def ignored_rules(self) -> frozenset[str]:
        out: set[str] = set()
        for ignore in self.ignores:
            out |= ignore.rules
        return frozenset(out)

    def release_states(self) -> None:
        self.from_state = self.to_state = self.old_field = self.new_field = None


@dataclasses.dataclass
class MigrationRecord:
    app_label: str
    name: str
    migration: Migration
    source: MigrationSource
    operations: list[OperationRecord]
    #: Tables that existed before the change and still do when the migration starts:
    #: current name -> name at the start of the change (busy, with readers and writers).
    existing: Names = dataclasses.field(default_factory=dict)
    #: The same when the migration is done.
    existing_after: Names | None = None
    atomic: bool = True
    applied: bool = False
    #: Postgres's (or Python's) error when the migration failed.
    error: str | None = None
    error_op: int | None = None
    #: It ran past --migration-timeout and was stopped (``watchdog``); ``error`` says so.
    timed_out: bool = False
    duration_ms: float = 0.0
    migration_ignores: frozenset[str] = frozenset()
    #: Relation (table or index) existing before the change -> its table.
    relation_tables: dict[str, str] = dataclasses.field(default_factory=dict)
    #: (table, column) pairs that a validated CHECK (column IS NOT NULL) covers in the
    #: database just before this migration (PG12+ SET NOT NULL then skips its scan).
    valid_not_null: frozenset[tuple[str, str]] = frozenset()
    #: Standard output and error the migration's code wrote while it was applied.
    output: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_label, self.name)

    @property
    def path(self) -> Path | None:
        return self.source.path

    def names_at(self, at: ExecutedStatement | OperationRecord | None = None) -> Names:
        """Pre-existing tables when ``at`` ran (default: when the migration started)."""
        view = at.existing if at is not None else None
        return view if view is not None else self.existing

    def is_existing(
        self, table: str | None, at: ExecutedStatement | OperationRecord | None = None
    ) -> bool:
        """``table`` is, when ``at`` runs, a table that existed before the change (under
        this name or one it was renamed from; not one dropped and created again)."""
        return bool(table) and table in self.names_at(at)

    def origin(
        self, table: str | None, at: ExecutedStatement | OperationRecord | None = None
    ) -> str | None:
        """The name at the start of the change of the pre-existing ``table`` (else None)."""
        return self.names_at(at).get(table) if table else None

    def release_states(self) -> None:
        for op in self.operations:
            op.release_states()


def new_record(migration: Migration, existing: Names | None = None) -> MigrationRecord:
    source = read_migration_source(migration)
    ops = []
    for index, operation in enumerate(migration.operations):
        try:
            description = operation.describe()
        except Exception:  # a custom operation with a broken describe()
            description = type(operation).__name__
        ops.append(
            OperationRecord(
                index=index,
                operation=operation,
                description=description,
                line=source.line_of(index),
                ignores=source.ignores.get(index, ()),
            )
        )
    return MigrationRecord(
        app_label=migration.app_label,
        name=migration.name,
        migration=migration,
        source=source,
        operations=ops,
        existing=existing if existing is not None else {},
        atomic=bool(migration.atomic),
        migration_ignores=class_ignores(migration),
    )


# --- facts about model operations -------------------------------------------------


def _model(state: ProjectState | None, app_label: str, model_name: str | None) -> Any:
    if state is None or not model_name:
        return None
    try:
        return state.apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return None


def _field(model: Any, name: str | None) -> Any:
    if model is None or not name:
        return None
    try:
        return model._meta.get_field(name)
    except Exception:
        return None


def describe_model_operation(
    record: OperationRecord,
    app_label: str,
    from_state: ProjectState,
    to_state: ProjectState,
    connection: Any,
) -> None:
    """Fill table/column/field facts from the states around a model operation."""
    op = record.operation
    if isinstance(op, RenameModel):
        before_name, after_name = op.old_name, op.new_name
    else:
        name = getattr(op, "model_name", None) or getattr(op, "name", None)
        if not isinstance(name, str):
            return
        before_name = after_name = name
    before = _model(from_state, app_label, before_name)
    after = _model(to_state, app_label, after_name)
    if before is not None:
        record.old_table = before._meta.db_table
    record.table = after._meta.db_table if after is not None else record.old_table
    if not isinstance(op, FieldOperation):
        return
    if isinstance(op, RenameField):
        old_name, new_name = op.old_name, op.new_name
    else:
        old_name = new_name = op.name
    record.old_field = _field(before, old_name)
    record.new_field = _field(after, new_name)
    for fld, column_attr, type_attr in (
        (record.old_field, "old_column", "old_type"),
        (record.new_field, "column", "new_type"),
    ):
        if fld is None or getattr(fld, "column", None) is None:
            continue
        setattr(record, column_attr, fld.column)
        with contextlib.suppress(Exception):
            setattr(record, type_attr, fld.db_type(connection))
    if record.column is None:
        record.column = record.old_column


# --- applying with hooks ------------------------------------------------------------


class StatementHooks:
    """What the tracer plugs in; the default observes nothing."""

    def begin_migration(self, connection: Any, record: MigrationRecord) -> None:
        return None

    def before_statement(self, connection: Any) -> None:
        """Called before each statement that runs inside a transaction."""
        return None

    def wants_observation(self, stmt: ExecutedStatement, record: OperationRecord | None) -> bool:
        return False

    def observe(self, connection: Any) -> Observation | None:
        return None

    def run_outside_transaction(
        self, connection: Any, run: Callable[[], Any], stmt: ExecutedStatement
    ) -> Any:
        """Run a statement of a non-atomic migration (no transaction is open)."""
        return run()

    def end_operation(self, connection: Any, op: OperationRecord) -> None:
        return None

    def end_migration(self, connection: Any, record: MigrationRecord) -> None:
        return None


#: How many RunPython queries are kept per operation (all are counted).
MAX_ORM_STATEMENTS = 200


class _Recorder:
    def __init__(self, record: MigrationRecord, connection: Any, hooks: StatementHooks) -> None:
        self.record = record
        self.connection = connection
        self.hooks = hooks
        self.current: OperationRecord | None = None
        self.emitting = False
        self.deferred_owner: dict[int, int] = {}
        self.editor: Any = None
        self._deferred_index: int | None = None
        self._seq = 0

    def stamp(self, stmts: list[ExecutedStatement]) -> list[ExecutedStatement]:
        """Number statements in the order they run."""
        for stmt in stmts:
            self._seq += 1
            stmt.seq = self._seq
        return stmts

    # wrapper around every cursor execution on the connection
    def execute_wrapper(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        origin = SCHEMA if self.emitting else ORM
        op = self.current
        if self.connection.in_atomic_block:
            self.hooks.before_statement(self.connection)
        if self.emitting and self._deferred_index is not None:
            origin = DEFERRED
            op = self.record.operations[self._deferred_index]
        if op is None and origin == ORM:
            return execute(sql, params, many, context)
        stmt = ExecutedStatement(
            sql=_render(self.connection, self.editor, sql, params, many),
            op_index=op.index if op else None,
            origin=origin,
        )
        # Django sends some pairs as one string ("SET CONSTRAINTS ...; ALTER TABLE ...");
        # rules see each statement, all sharing the execution's outcome.
        parts = self.stamp([stmt] if origin == ORM else _parts(stmt))
        if op is not None:
            if origin == ORM:
                op.orm_count += 1
                if len(op.orm_statements) < MAX_ORM_STATEMENTS:
                    op.orm_statements.append(stmt)
            else:
                op.statements.extend(parts)
        try:
            return self._execute(stmt, op, execute, sql, params, many, context)
        finally:
            if len(parts) > 1:
                for part in parts:
                    part.autocommit, part.error = stmt.autocommit, stmt.error
                    part.observation = stmt.observation
                parts[-1].duration_ms = stmt.duration_ms

    def _execute(
        self,
        stmt: ExecutedStatement,
        op: OperationRecord | None,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: Any,
    ) -> Any:
        autocommit = not self.connection.in_atomic_block
        stmt.autocommit = autocommit
        started = time.perf_counter()
        try:
            if autocommit:
                result = self.hooks.run_outside_transaction(
                    self.connection, lambda: execute(sql, params, many, context), stmt
                )
            else:
                result = execute(sql, params, many, context)
        except Exception as exc:
            stmt.error = database_error_text(exc)
            stmt.duration_ms = (time.perf_counter() - started) * 1000
            raise
        stmt.duration_ms = (time.perf_counter() - started) * 1000
        if not autocommit and self.hooks.wants_observation(stmt, op):
            stmt.observation = self.hooks.observe(self.connection)
        return result

    def wrap_editor(self, editor: Any) -> None:
        if self.editor is editor:
            return
        self.editor = editor
        original = editor.execute

        def execute(sql: Any, params: Any = ()) -> Any:
            owner = self.deferred_owner.get(id(sql))
            if editor.collect_sql:
                op = self.record.operations[owner] if owner is not None else self.current
                if op is not None:
                    collected = ExecutedStatement(
                        sql=_render(self.connection, editor, sql, params, False),
                        op_index=op.index,
                        origin=DEFERRED if owner is not None else SCHEMA,
                    )
                    op.statements.extend(self.stamp(_parts(collected)))
                return original(sql, params)
            was = (self.emitting, self._deferred_index)
            self.emitting = True
            self._deferred_index = owner
            try:
                return original(sql, params)
            finally:
                self.emitting, self._deferred_index = was

        editor.execute = execute

    def wrap_operation(self, op: OperationRecord) -> Callable[[], None]:
        operation = op.operation
        original = operation.database_forwards
        app_label = self.record.app_label

        def database_forwards(
            app: str, schema_editor: Any, from_state: ProjectState, to_state: ProjectState
        ) -> Any:
            self.wrap_editor(schema_editor)
            op.from_state, op.to_state = from_state, to_state
            with contextlib.suppress(Exception):
                describe_model_operation(op, app_label, from_state, to_state, self.connection)
            before = {id(s) for s in schema_editor.deferred_sql}
            previous, self.current = self.current, op
            started = time.perf_counter()
            try:
                return original(app, schema_editor, from_state, to_state)
            except BaseException:
                self.record.error_op = op.index
                raise
            finally:
                op.duration_ms += (time.perf_counter() - started) * 1000
                op.executed = True
                self.current = previous
                for stmt in schema_editor.deferred_sql:
                    if id(stmt) not in before:
                        self.deferred_owner[id(stmt)] = op.index
                if self.record.error_op is None:
                    self.hooks.end_operation(self.connection, op)

        operation.database_forwards = database_forwards

        def restore() -> None:
            with contextlib.suppress(AttributeError):
                del operation.database_forwards

        return restore


def _parts(stmt: ExecutedStatement) -> list[ExecutedStatement]:
    """One statement per part of a multi-statement string (the string itself if one)."""
    texts = sqlfacts.split(stmt.sql) if ";" in stmt.sql.rstrip().rstrip(";") else []
    if len(texts) < 2:
        return [stmt]
    return [
        ExecutedStatement(sql=text, op_index=stmt.op_index, origin=stmt.origin) for text in texts
    ]


def _render(connection: Any, editor: Any, sql: Any, params: Any, many: bool) -> str:
    text = str(sql)
    if not params or many:
        return text.strip()
    try:
        quote = editor.quote_value if editor is not None else connection.ops.quote_name
        return (text % tuple(map(quote, params))).strip()
    except Exception:
        return text.strip()


def database_error_text(exc: BaseException) -> str:
    """Postgres's own message (with detail and hint) for database errors."""
    cause: BaseException | None = exc
    while cause is not None:
        diag = getattr(cause, "diag", None)
        if diag is not None and getattr(diag, "message_primary", None):
            parts = [f"{diag.severity or 'ERROR'}: {diag.message_primary}"]
            if diag.message_detail:
                parts.append(f"DETAIL: {diag.message_detail}")
            if diag.message_hint:
                parts.append(f"HINT: {diag.message_hint}")
            if getattr(diag, "sqlstate", None):
                parts.append(f"(SQLSTATE {diag.sqlstate})")
            return "\n".join(parts)
        cause = cause.__cause__ or cause.__context__
        if cause is exc:
            break
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, DatabaseError) else text


@contextlib.contextmanager
def _installed(recorder: _Recorder) -> Iterator[None]:
    restores = [recorder.wrap_operation(op) for op in recorder.record.operations]
    try:
        with recorder.connection.execute_wrapper(recorder.execute_wrapper):
            yield
    finally:
        for restore in restores:
            restore()


def apply_recorded(
    executor: MigrationExecutor,
    state: ProjectState,
    record: MigrationRecord,
    hooks: StatementHooks | None = None,
) -> ProjectState:
    """Apply ``record.migration`` for real, filling ``record``; return the new state.

    On failure the record holds the error and the exception propagates
    (an atomic migration has been rolled back by then).
    """
    hooks = hooks or StatementHooks()
    connection = executor.connection
    recorder = _Recorder(record, connection, hooks)
    hooks.begin_migration(connection, record)
    started = time.perf_counter()
    try:
        with _installed(recorder):
            new_state = executor.apply_migration(state, record.migration)
        record.applied = True
        return new_state
    except Exception as exc:
        record.error = database_error_text(exc)
        raise
    finally:
        record.duration_ms = (time.perf_counter() - started) * 1000
        hooks.end_migration(connection, record)


def collect_static(
    executor: MigrationExecutor, state: ProjectState, record: MigrationRecord
) -> None:
    """Collect the SQL of every operation without running it (``sqlmigrate``'s way).

    Used when applying failed: the database is back where it was before the
    migration (atomic migrations roll back), so the rules still see every
    operation's SQL.
    """
    connection = executor.connection
    for op in record.operations:
        op.statements = []
        op.orm_statements = []
        op.orm_count = 0
    recorder = _Recorder(record, connection, StatementHooks())
    error, error_op = record.error, record.error_op
    with (
        _installed(recorder),
        connection.schema_editor(collect_sql=True, atomic=record.migration.atomic) as editor,
    ):
        record.migration.apply(state, editor, collect_sql=True)
    record.error, record.error_op = error, error_op
