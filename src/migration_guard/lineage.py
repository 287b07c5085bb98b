"""Which tables of the change are the ones that existed before it, statement by statement.

"Pre-existing" means: the table existed after the whole base, before the first
change migration. It has readers and writers in production; a table the change
creates has none yet. Names are not identities: a table renamed by the change
is still the old, busy table under a new name, and a table dropped and created
again under the same name is a new, empty one. :class:`Lineage` follows the
change's statements in the order PostgreSQL ran them (each operation's own
statements, then the deferred SQL Django runs when the migration's operations
are done) and stamps every statement and operation with the tables that are
pre-existing at that point: current name -> name at the start of the change.
The trace knows relations by that original name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import sqlfacts

if TYPE_CHECKING:
    from .collect import ExecutedStatement, MigrationRecord

#: Current name -> the name the table had at the start of the change.
Names = Mapping[str, str]


class Lineage:
    """The pre-existing tables of one change, followed through its migrations."""

    def __init__(self, tables: Iterable[str]) -> None:
        self._names: dict[str, str] = {t: t for t in tables}
        self._frozen: Names | None = None

    @property
    def names(self) -> Names:
        """The current view (shared and read-only until the next change of it)."""
        if self._frozen is None:
            self._frozen = MappingProxyType(dict(self._names))
        return self._frozen

    def follow(self, record: MigrationRecord, *, applied: bool = True) -> None:
        """Stamp ``record``'s operations and statements, and move past them.

        A migration that did not apply (rolled back) is stamped, but the tables
        stay as they were before it.
        """
        from .collect import DEFERRED

        before = dict(self._names)

        record.existing = self.names
        deferred: list[ExecutedStatement] = []
        for op in record.operations:
            op.existing = self.names
            own: list[ExecutedStatement] = []
            for stmt in (*op.statements, *op.orm_statements):
                (deferred if stmt.origin == DEFERRED else own).append(stmt)
            for stmt in sorted(own, key=_order):
                self._step(stmt)
            op.existing_after = self.names
        for stmt in sorted(deferred, key=_order):
            self._step(stmt)
        record.existing_after = self.names
        if not applied:
            self._names = before
            self._frozen = None

    def _step(self, stmt: ExecutedStatement) -> None:
        stmt.existing = self.names
        try:
            self._apply(stmt)
        finally:
            stmt.existing_after = self.names

    def _apply(self, stmt: ExecutedStatement) -> None:
        if stmt.error is not None:
            return
        facts = stmt.facts
        if facts.kind == sqlfacts.DROP_TABLE:
            for table in facts.tables or (facts.table,):
                self._forget(table)
        elif facts.kind == sqlfacts.CREATE_TABLE and facts.table:
            if not (facts.if_exists and facts.table in self._names):
                self._forget(facts.table)
        elif facts.kind == sqlfacts.ALTER_TABLE and facts.table:
            for action in facts.actions:
                if action.kind == sqlfacts.RENAME_TABLE and action.new_name:
                    self._rename(facts.table, action.new_name)

    def _forget(self, table: str | None) -> None:
        if table and table in self._names:
            del self._names[table]
            self._frozen = None

    def _rename(self, old: str, new: str) -> None:
        if old == new:
            return
        origin = self._names.pop(old, None)
        self._names.pop(new, None)
        if origin is not None:
            self._names[new] = origin
        self._frozen = None


def _order(stmt: ExecutedStatement) -> int:
    return stmt.seq
