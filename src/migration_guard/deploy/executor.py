"""A MigrationExecutor that applies each migration under the deploy guard.

Django's executor applies an atomic migration in one transaction, but records
it in ``django_migrations`` after that transaction when the migration has
deferred SQL (indexes, foreign keys). Here the deferred SQL runs at the end of
the migration's own transaction, followed by the record, so the migration and
its record commit together or not at all, and a retry starts clean.

A non-atomic migration runs its operations one by one as Django does
(``Migration.apply``), so that an atomic operation inside it (``RunPython(...,
atomic=True)``) can be retried whole; its other statements are retried in
place by the guard's execute wrapper.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState

from .guard import Guard
from .settings import GuardSettings

#: Django 6.0 records by (app_label, name, forward); earlier versions by the migration.
_RECORD_BY_NAME = "forward" in inspect.signature(MigrationExecutor.record_migration).parameters


class GuardedExecutor(MigrationExecutor):
    """Django's executor, with every forwards and backwards migration run by a :class:`Guard`."""

    def __init__(
        self,
        connection: Any,
        progress_callback: Callable[..., Any] | None = None,
        *,
        settings: GuardSettings,
        before_log: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(connection, progress_callback)
        self.guard: Guard | None = None
        if settings.active and connection.vendor == "postgresql":
            self.guard = Guard(settings, connection, before_log=before_log)

    def migrate(self, targets: Any, *args: Any, **kwargs: Any) -> Any:
        if self.guard is None:
            return super().migrate(targets, *args, **kwargs)
        with self.guard.session():
            return super().migrate(targets, *args, **kwargs)

    # -- forwards ---------------------------------------------------------------------
    def apply_migration(
        self,
        state: ProjectState,
        migration: Migration,
        fake: bool = False,
        fake_initial: bool = False,
    ) -> ProjectState:
        guard = self.guard
        if guard is None or fake:
            return super().apply_migration(state, migration, fake=fake, fake_initial=fake_initial)
        if self.progress_callback:
            self.progress_callback("apply_start", migration, fake)
        if fake_initial:
            applied, state = self.detect_soft_applied(state, migration)
            if applied:
                self._record(migration)
                if self.progress_callback:
                    self.progress_callback("apply_success", migration, True)
                return state
        label = f"{migration.app_label}.{migration.name}"
        if migration.atomic:
            state = guard.run_atomic(label, lambda: self._apply_atomically(state, migration))
        else:
            state = guard.run_non_atomic(label, lambda: self._apply_non_atomic(state, migration))
        if self.progress_callback:
            self.progress_callback("apply_success", migration, fake)
        return state

    def _apply_atomically(self, state: ProjectState, migration: Migration) -> ProjectState:
        attempt_state = state.clone()  # apply() changes the state it is given
        with self.connection.schema_editor(atomic=True) as editor:
            new_state = migration.apply(attempt_state, editor)
            _run_deferred(editor)
            self._record(migration)
        return new_state

    def _apply_non_atomic(self, state: ProjectState, migration: Migration) -> ProjectState:
        guard = self.guard
        assert guard is not None
        label = f"{migration.app_label}.{migration.name}"
        alias = self.connection.alias
        with self.connection.schema_editor(atomic=False) as editor:
            if type(migration).apply is not Migration.apply:
                # A Migration class of its own: its apply() runs as it is (its statements
                # are still retried one by one; an atomic operation in it is not).
                state = migration.apply(state, editor)
                _run_deferred(editor)
                self._record(migration)
                return state
            # Migration.apply, one operation at a time (its collect_sql branch aside).
            for number, operation in enumerate(migration.operations, start=1):
                old_state = state.clone()
                operation.state_forwards(migration.app_label, state)
                if operation.atomic:
                    guard.run_atomic(
                        f"{label} operation {number} ({type(operation).__name__})",
                        _in_transaction(
                            alias,
                            operation.database_forwards,
                            migration.app_label,
                            editor,
                            old_state,
                            state,
                        ),
                    )
                else:
                    operation.database_forwards(migration.app_label, editor, old_state, state)
            _run_deferred(editor)
        self._record(migration)
        return state

    # -- backwards --------------------------------------------------------------------
    def unapply_migration(
        self, state: ProjectState, migration: Migration, fake: bool = False
    ) -> ProjectState:
        guard = self.guard
        if guard is None or fake:
            return super().unapply_migration(state, migration, fake=fake)
        if self.progress_callback:
            self.progress_callback("unapply_start", migration, fake)
        label = f"{migration.app_label}.{migration.name} (backwards)"
        if migration.atomic:
            state = guard.run_atomic(label, lambda: self._unapply(state.clone(), migration, True))
        else:
            state = guard.run_non_atomic(label, lambda: self._unapply(state, migration, False))
        if self.progress_callback:
            self.progress_callback("unapply_success", migration, fake)
        return state

    def _unapply(self, state: ProjectState, migration: Migration, atomic: bool) -> ProjectState:
        with self.connection.schema_editor(atomic=atomic) as editor:
            state = migration.unapply(state, editor)
            _run_deferred(editor)
            if atomic:
                self._record_unapplied(migration)
        if not atomic:
            self._record_unapplied(migration)
        return state

    def _record(self, migration: Migration) -> None:
        record: Any = self.record_migration
        if _RECORD_BY_NAME:
            record(migration.app_label, migration.name)
        else:
            record(migration)

    def _record_unapplied(self, migration: Migration) -> None:
        if _RECORD_BY_NAME:
            record: Any = self.record_migration
            record(migration.app_label, migration.name, forward=False)
            return
        for app_label, name in migration.replaces or ():
            self.recorder.record_unapplied(app_label, name)
        self.recorder.record_unapplied(migration.app_label, migration.name)


def _run_deferred(editor: Any) -> None:
    """The SQL the schema editor would run on exit (indexes, foreign keys), run now."""
    while editor.deferred_sql:
        editor.execute(editor.deferred_sql.pop(0), None)


def _in_transaction(alias: str, call: Callable[..., Any], *args: Any) -> Callable[[], None]:
    """``call(*args)`` in a transaction of its own (an atomic operation)."""

    def run() -> None:
        with transaction.atomic(alias):
            call(*args)

    return run


@contextlib.contextmanager
def guarded_migrate_command(
    module: Any, settings: GuardSettings, before_log: Callable[[], None] | None = None
) -> Iterator[None]:
    """Make Django's ``migrate`` command (``module``) build a :class:`GuardedExecutor`.

    The command creates its executor by the name ``MigrationExecutor`` of its
    module; that name points at a factory for the duration of the block.
    """
    original = module.MigrationExecutor

    def factory(connection: Any, progress_callback: Any = None) -> GuardedExecutor:
        return GuardedExecutor(
            connection, progress_callback, settings=settings, before_log=before_log
        )

    module.MigrationExecutor = factory
    try:
        yield
    finally:
        module.MigrationExecutor = original
