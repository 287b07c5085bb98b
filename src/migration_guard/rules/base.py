"""What a rule is, and what it is given.

A rule is a class in its own module under ``migration_guard.rules``. Its
docstring is its documentation: the first line is the title; the rest says
what it flags, which lock it takes and what that blocks, the safe
alternative, and references. Defining the class registers it (no central
list to edit); ``docs/rules/`` and SARIF read the same docstring.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from .. import pglocks as lockmodes
from .. import sqlfacts
from ..findings import Category, Finding, Lock, OperationRef, Severity
from ..sqlfacts import AlterAction, SqlStatement

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, MigrationRecord, OperationRecord
    from ..conf import Config
    from ..pgversion import PgFacts

_REGISTRY: dict[str, type[Rule]] = {}


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What the trace should see on the table when the rule is right."""

    #: The lock mode the operation takes on the table (pg_locks spelling).
    lock: str | None = None
    rewrite: bool = False
    scan: bool = False
    #: The finding speaks for the table work its operation does (else whole-table work
    #: under a blocking lock there is still reported by observed-table-work-under-lock).
    explains_work: bool = True


class Rule:
    """Base class; subclasses with an ``id`` register themselves."""

    id: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.WARNING
    category: ClassVar[Category] = Category.LOCKING
    #: Stay quiet about tables created earlier in the same change (no readers yet).
    only_existing_tables: ClassVar[bool] = True
    #: What the trace should observe; None when the hazard is not about locks.
    predicts: ClassVar[Prediction | None] = None
    #: True when ``plan_zero_downtime`` has a strategy that writes the fix.
    plannable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.id:
            return
        if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
            raise RuntimeError(f"two rules share the id {cls.id!r}: {_REGISTRY[cls.id]} and {cls}")
        _REGISTRY[cls.id] = cls

    # -- documentation ---------------------------------------------------------
    @classmethod
    def title(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0].strip() if doc.strip() else cls.id

    @classmethod
    def documentation(cls) -> str:
        """The docstring without its title line."""
        doc = inspect.getdoc(cls) or ""
        lines = doc.strip().splitlines()
        return "\n".join(lines[1:]).strip()

    # -- checks ---------------------------------------------------------------
    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        return ()

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterable[Finding]:
        return ()


@dataclasses.dataclass
class RuleContext:
    """What a rule may consult besides the operation itself."""

    config: Config
    pg: PgFacts
    migration: MigrationRecord
    #: ``lock_timeout`` is set for the migration connection (settings OPTIONS or ours).
    lock_timeout_configured: bool = False
    #: Command people run to invoke Django (for suggested commands).
    manage: str = "python manage.py"
    #: The operation being checked (``check_operation``), else None.
    current: OperationRecord | None = None
    #: The database alias audited (``--database``).
    database: str = "default"

    def is_existing(
        self, table: str | None, at: ExecutedStatement | OperationRecord | None = None
    ) -> bool:
        """True when ``table`` is, where ``at`` runs (default: the operation being
        checked), a table that existed before the change (it has readers and writers)."""
        return self.migration.is_existing(table, at if at is not None else self.current)

    def plan_command(self) -> str:
        m = self.migration
        alias = "" if self.database == "default" else f" --database {self.database}"
        return f"{self.manage} plan_zero_downtime {m.app_label} {m.name}{alias}"

    def finding(
        self,
        rule: Rule,
        op: OperationRecord | None,
        message: str,
        fix: str,
        *,
        table: str | None = None,
        sql: Iterable[str] = (),
        lock: str | None = None,
        notes: Iterable[str] = (),
        severity: Severity | None = None,
        also: Iterable[tuple[str, str]] = (),
    ) -> Finding:
        """A finding of ``rule`` about ``op`` (None: the migration as a whole).

        ``lock`` is the mode the operation takes on ``table``; ``also`` lists other
        (relation, mode) pairs it takes (e.g. the table a foreign key references),
        so the trace attributes those locks to this finding too.
        """
        ref: OperationRef | None = op.ref if op is not None else None
        if ref is None:
            line = self.migration.source.operations_line or self.migration.source.class_line
            ref = None if line is None else OperationRef(-1, "(whole migration)", line, "")
        pairs = ([(table, lock)] if lock and table else []) + list(also)
        locks = tuple(
            Lock(rel, lockmodes.normalise(mode), lockmodes.blocks(mode)) for rel, mode in pairs
        )
        return Finding(
            rule=rule.id,
            severity=severity or rule.severity,
            category=rule.category,
            message=message,
            fix=fix,
            app_label=self.migration.app_label,
            migration=self.migration.name,
            operation=ref,
            locks=locks,
            sql=tuple(sql),
            table=table,
            plan_command=self.plan_command() if rule.plannable else None,
            notes=tuple(notes),
        )


def registered() -> dict[str, type[Rule]]:
    return dict(_REGISTRY)


# --- helpers shared by rules ----------------------------------------------------------


def statements(op: OperationRecord) -> Iterable[tuple[ExecutedStatement, SqlStatement]]:
    """The SQL the operation emitted (Django's DDL, RunSQL, deferred SQL), with facts."""
    for stmt in op.statements:
        yield stmt, stmt.facts


def alter_actions(
    op: OperationRecord, *kinds: str
) -> Iterable[tuple[ExecutedStatement, SqlStatement, AlterAction]]:
    """ALTER TABLE actions of the operation's SQL, optionally only of ``kinds``."""
    for stmt, facts in statements(op):
        if facts.kind != sqlfacts.ALTER_TABLE:
            continue
        for action in facts.actions:
            if not kinds or action.kind in kinds:
                yield stmt, facts, action


def is_runpython(op: OperationRecord) -> bool:
    from django.db.migrations.operations.special import RunPython

    return isinstance(op.operation, RunPython)


def is_runsql(op: OperationRecord) -> bool:
    from django.db.migrations.operations.special import RunSQL

    return isinstance(op.operation, RunSQL)
