"""What strategies are given: the plan's settings, the states around an operation, SQL helpers.

SQL is produced by Django's own PostgreSQL schema editor in ``collect_sql`` mode
(names, quoting, column types, constraint and index SQL), so generated files say
exactly what Django would have said, minus the hazard. Nothing here connects to a
database: the connection object is only used for its ``ops`` and schema editor.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeAlias

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import names_digest
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from ..conf import Config
from ..pgversion import PgFacts
from .model import RunSQLSpec, SourceOp

#: The Django objects strategies handle: a model field (bound to a rendered model or
#: not), a model class, a migration operation. Named for the reader; fields and models
#: stay dynamically typed because django-stubs' ``Field`` and ``Options`` lack what the
#: planner reads (``db_index``, ``target_field``, ``get_field`` narrowed to fields).
DjangoField: TypeAlias = Any
DjangoModel: TypeAlias = Any
DjangoOperation: TypeAlias = Operation

#: Longest identifier PostgreSQL keeps (NAMEDATALEN - 1).
MAX_IDENTIFIER = 63
POSTGRES_ENGINE = "django.db.backends.postgresql"


def sql_connection(alias: str = DEFAULT_DB_ALIAS) -> Any:
    """A PostgreSQL connection object for SQL generation (never opened here).

    The project's own when ``alias`` is PostgreSQL (its backend subclass included),
    else a stand-alone PostgreSQL wrapper, so that planning works with any settings.
    """
    if alias in connections.settings:
        conn = connections[alias]
        if conn.vendor == "postgresql":
            return conn
    from django.db.utils import load_backend

    backend = load_backend(POSTGRES_ENGINE)
    settings = connections.configure_settings(
        {"migration_guard_planner": {"ENGINE": POSTGRES_ENGINE, "NAME": "planner"}}
    )["migration_guard_planner"]
    return backend.DatabaseWrapper(settings, "migration_guard_planner")


@dataclasses.dataclass
class PlanContext:
    """Settings and helpers shared by every operation of one plan."""

    app_label: str
    config: Config
    pg: PgFacts
    connection: Any
    #: Models (``app_label.model_name``) that existed before the change: they have rows.
    existing_models: frozenset[str]
    #: Write ``db_default`` (Django 5.0+) rather than SeparateDatabaseAndState + RunSQL.
    use_db_default: bool = True
    lock_timeout: str = "5s"
    #: Renames change the database names too (expand/contract) instead of keeping them.
    full_rename: bool = False
    #: Type changes swap the columns' names at the switch (False: the model moves to the
    #: new column through db_column; no column changes type under running code).
    column_swap: bool = True
    #: Manage command people run (for the next-step command in headers).
    manage: str = "python manage.py"
    #: (model, field or None, "alter"/"remove") that migrations after the replaced one
    #: change again: their final definition comes from there, not from this plan (no
    #: models.py edit for them).
    later: frozenset[tuple[str, str | None, str]] = frozenset()

    def changed_later(
        self, model_name: str, field_name: str | None = None, *, kinds: tuple[str, ...]
    ) -> bool:
        """A later migration of the history changes this field (or its whole model) in one of
        these ways: "alter", "remove" (fields and models), "rename", "table" (models)."""
        model = model_name.lower()
        field = field_name.lower() if field_name else None
        return any(
            m == model and (f is None or f == field) and kind in kinds for m, f, kind in self.later
        )

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    # -- SQL ---------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return str(self.connection.ops.quote_name(name))

    def editor(self) -> Any:
        """A schema editor that only collects SQL (no transaction, no connection)."""
        editor = self.connection.schema_editor(collect_sql=True, atomic=False)
        editor.deferred_sql = []  # set by __enter__, which would open a transaction
        return editor

    def identifier(self, *parts: str, suffix: str = "") -> str:
        """``part1_part2_suffix``, shortened with a hash to fit 63 characters."""
        base = "_".join(p for p in parts if p)
        full = f"{base}_{suffix}" if suffix else base
        if len(full) <= MAX_IDENTIFIER:
            return full
        digest = names_digest(full, length=8)
        keep = MAX_IDENTIFIER - len(digest) - len(suffix) - 2
        return f"{base[:keep]}_{digest}_{suffix}" if suffix else f"{base[:keep]}_{digest}"

    def sql(
        self,
        sql: str | tuple[str, ...] | None,
        reverse: str | tuple[str, ...] | None = None,
        *,
        comment: str = "",
        locks: tuple[str, ...] = (),
        scans: tuple[str, ...] = (),
    ) -> RunSQLSpec:
        return RunSQLSpec(
            sql=sql,
            reverse=reverse,
            comment=comment,
            locks=frozenset(locks),
            scans=frozenset(scans),
        )

    def is_existing(self, app_label: str, model_name: str) -> bool:
        return f"{app_label}.{model_name.lower()}" in self.existing_models


@dataclasses.dataclass
class OpContext:
    """One operation of the input and the states before and after it."""

    plan: PlanContext
    index: int
    operation: Any
    before: ProjectState
    after: ProjectState
    #: The operation's source when it comes from an existing migration file.
    source: SourceOp | None = None

    @property
    def app_label(self) -> str:
        return self.plan.app_label

    def model_before(self, name: str) -> Any:
        return self.before.apps.get_model(self.app_label, name)

    def model_after(self, name: str) -> Any:
        return self.after.apps.get_model(self.app_label, name)

    def existing(self, model_name: str) -> bool:
        """The model's table existed before the change (it has rows and readers)."""
        return self.plan.is_existing(self.app_label, model_name)

    def spec(self) -> Any:
        """The operation as it will be written: Django's writer for Django's model
        operations (the same text makemigrations writes, comments kept), the exact
        source for RunPython, RunSQL and other operations (their code must not change).
        """
        from django.db import migrations

        from .model import DjangoOp

        op = self.operation
        source = self.source
        exact = isinstance(op, (migrations.RunPython, migrations.RunSQL)) or not (
            type(op).__module__.startswith("django.")
        )
        if source is not None and exact:
            return source
        return DjangoOp(op, comment=source.comment if source is not None else "")
