"""Verification on data: the plan keeps every row, and the previous release keeps working.

An empty table proves nothing about a migration: a copy that truncates, a
reverse that overwrites, a NOT NULL the previous release's INSERTs break all
pass on it. Before the plan runs on the scratch database, the tables it
touches (and the tables their foreign keys point to) get rows written by the
previous release's own models (Django's historical models of the state before
the plan) with values at the edges: NULL where both states allow it, the
longest string both allow (ASCII and multi-byte), the smallest and largest
numbers both allow, dates at the ends of their range, every parent row as a
foreign key target.

Then :class:`DataProof` checks, for every row that existed before:

* after the plan (forward), after migrating back, and forward again, every
  column the previous release knew still holds the same value (a NULL may be
  filled only where the plan backfills; a column the plan drops is only
  compared until it goes, and said so);
* after each migration of the plan, and after migrating back, the previous
  release's INSERT, SELECT, UPDATE and DELETE of its own columns work.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, models, transaction
from psycopg import sql

#: Rows seeded per table (and values per column): edges first, then ordinary ones.
ROWS = 6
MULTIBYTE = "é漢😀ß"

Snapshot = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


@dataclasses.dataclass
class ProofResult:
    #: Table -> rows seeded.
    seeded: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Statements of the previous release that ran (and worked).
    probes: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: Values compared (rows x columns x comparisons).
    compared: int = 0


def _is_text(field: Any) -> bool:
    return isinstance(field, (models.CharField, models.TextField))


def _integer_range(field: Any, connection: Any) -> tuple[int, int] | None:
    if not isinstance(field, models.IntegerField) or isinstance(field, models.AutoField):
        return None
    try:
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        return int(low), int(high)
    except KeyError:
        return None


def _max_length(field: Any) -> int | None:
    return getattr(field, "max_length", None) if isinstance(field, models.CharField) else None


def _tz(value: datetime.datetime) -> datetime.datetime:
    if settings.USE_TZ:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def edge_values(before: Any, after: Any | None, connection: Any) -> list[Any] | None:
    """``ROWS`` distinct values for a column the previous release writes with ``before``
    and the plan turns into ``after`` (None: the column goes or is not a field): values
    both fields hold exactly. None when the planner has no generator for the type."""
    both = [f for f in (before, after) if f is not None]
    if all(_is_text(f) for f in both):
        lengths = [n for n in (_max_length(f) for f in both) if n]
        n = min(lengths) if lengths else 300
        longest = ("x" * n)[:n]
        multibyte = (MULTIBYTE * n)[:n]
        values = ["", longest, multibyte, "a", "b1", "b2"]
        return values[:ROWS] if n >= 2 else ["", "a", "b", "c", "d", "e"][: max(1, ROWS)]
    ranges = [r for r in (_integer_range(f, connection) for f in both) if r]
    if ranges and len(ranges) == len(both):
        low = max(r[0] for r in ranges)
        high = min(r[1] for r in ranges)
        return [low, high, -1 if low < 0 else 1, 0, 7, 8]
    if all(isinstance(f, models.DecimalField) for f in both):
        integer_digits = min(f.max_digits - f.decimal_places for f in both)
        places = min(f.decimal_places for f in both)
        top = decimal.Decimal("9" * integer_digits or "0") + (
            decimal.Decimal(1) - decimal.Decimal(1).scaleb(-places) if places else 0
        )
        tiny = decimal.Decimal(1).scaleb(-places)
        return [-top, top, tiny, decimal.Decimal(0), decimal.Decimal(7), decimal.Decimal(8)]
    if all(isinstance(f, models.FloatField) for f in both):
        return [-1e300, 1e300, 1e-300, 0.0, 7.5, 8.5]
    if all(isinstance(f, models.BooleanField) for f in both):
        return [False, True, False, True, False, True]
    if all(isinstance(f, models.DateTimeField) for f in both):
        return [
            _tz(datetime.datetime(1, 1, 2)),
            _tz(datetime.datetime(9999, 12, 30, 23, 59, 59, 999999)),
            _tz(datetime.datetime(2000, 2, 29, 12, 0, 0, 1)),
            _tz(datetime.datetime(1970, 1, 1)),
            _tz(datetime.datetime(2024, 1, 7)),
            _tz(datetime.datetime(2024, 1, 8)),
        ]
    if all(
        isinstance(f, models.DateField) and not isinstance(f, models.DateTimeField) for f in both
    ):
        return [
            datetime.date(1, 1, 1),
            datetime.date(9999, 12, 31),
            datetime.date(2000, 2, 29),
            datetime.date(1970, 1, 1),
            datetime.date(2024, 1, 7),
            datetime.date(2024, 1, 8),
        ]
    if all(isinstance(f, models.TimeField) for f in both):
        return [
            datetime.time(0, 0),
            datetime.time(23, 59, 59, 999999),
            datetime.time(12, 0),
            datetime.time(0, 0, 1),
            datetime.time(7),
            datetime.time(8),
        ]
    if all(isinstance(f, models.DurationField) for f in both):
        return [
            datetime.timedelta(days=-1),
            datetime.timedelta(days=999_999),
            datetime.timedelta(microseconds=1),
            datetime.timedelta(0),
            datetime.timedelta(days=7),
            datetime.timedelta(days=8),
        ]
    if all(isinstance(f, models.UUIDField) for f in both):
        return [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)] + [
            uuid.UUID(int=i) for i in range(1, ROWS - 1)
        ]
    if all(isinstance(f, models.JSONField) for f in both):
        return [{}, [], {MULTIBYTE: [1, 2.5, None, True]}, "text", 0, {"k": 8}]
    if all(isinstance(f, models.BinaryField) for f in both):
        return [b"", b"\x00\xff" * 100, b"\x00", b"a", b"b", b"c"]
    if all(isinstance(f, models.GenericIPAddressField) for f in both):
        return ["0.0.0.0", "255.255.255.255", "::1", "10.0.0.1", "10.0.0.7", "10.0.0.8"]
    if before is not None and after is not None and type(before) is not type(after):
        # A change of kind (text -> integer...): small numbers read the same in both.
        return [_as_kind(before, i) for i in range(ROWS)]
    return None


def _as_kind(field: Any, number: int) -> Any:
    if _is_text(field):
        return str(number)
    if isinstance(field, models.DecimalField):
        return decimal.Decimal(number)
    if isinstance(field, models.FloatField):
        return float(number)
    return number


class DataProof:
    """Rows of the previous release, checked across the plan (see the module docstring)."""

    def __init__(
        self,
        connection: Any,
        start_state: Any,
        end_state: Any,
        touched: Iterable[tuple[str, str]],
        fills: Iterable[tuple[str, str]],
        rewrites: Iterable[tuple[str, str]] | None = (),
    ) -> None:
        self.connection = connection
        self.alias = connection.alias
        self.start = start_state
        self.end = end_state
        self.touched = sorted(set(touched))
        self.fills = set(fills)
        #: What the migration's own operations, carried over as written, may change (None:
        #: anything, a RunPython): those values are the migration's business, not the plan's.
        self.rewrites = None if rewrites is None else set(rewrites)
        self.result = ProofResult()

        #: Tables whose rows are compared -> the model of the previous release.
        self.models: dict[str, Any] = {}
        self._parents: dict[str, list[Any]] = {}
        self._dropped: set[tuple[str, str]] = set()
        self._serial = 100

    # -- seeding ---------------------------------------------------------------------------
    def seed(self) -> None:
        for app_label, model_name in self.touched:
            try:
                model = self.start.apps.get_model(app_label, model_name)
            except LookupError:
                continue  # created by the plan: no rows before it
            if not self._seedable(model):
                continue
            # Tables the plan's new foreign keys point to get rows first: every target.
            for parent in self._new_parents(model):
                self._seed(parent, seen=set())
            self._seed(model, seen=set())
            self.models[model._meta.db_table] = model

    def _new_parents(self, model: Any) -> list[Any]:
        """Models (of the previous release) that ``model``'s foreign keys point to, after."""
        meta = model._meta
        try:
            after = self.end.apps.get_model(meta.app_label, meta.model_name)
        except LookupError:
            return []
        out = []
        for field in after._meta.concrete_fields:
            if not (field.is_relation and (field.many_to_one or field.one_to_one)):
                continue
            target = field.related_model._meta
            try:
                parent = self.start.apps.get_model(target.app_label, target.model_name)
            except LookupError:
                continue
            if parent is not model and self._seedable(parent):
                out.append(parent)
        return out

    @staticmethod
    def _seedable(model: Any) -> bool:
        meta = model._meta
        return bool(meta.managed and not meta.proxy and not meta.auto_created)

    def _after_field(self, model: Any, field: Any) -> Any | None:
        """The field that holds ``field``'s column after the plan (None: gone)."""
        meta = model._meta
        try:
            after = self.end.apps.get_model(meta.app_label, meta.model_name)
        except LookupError:
            return None
        for candidate in after._meta.concrete_fields:
            if candidate.column == field.column:
                return candidate
        return None

    def _seed(self, model: Any, seen: set[str]) -> list[Any]:
        table = model._meta.db_table
        if table in self._parents:
            return self._parents[table]
        if table in seen:
            return []
        seen.add(table)
        rows: list[Any] = []
        columns = self._values(model, seen)
        if columns is None:
            self._parents[table] = rows
            return rows
        # An ordinary row first (the first key of a fresh table: what defaults like
        # ``default=1`` point to), then the edges.
        for number, index in enumerate((4, 0, 1, 2, 3, 5)):
            row = {name: values[index] for name, values in columns.items()}
            try:
                rows.append(self._insert(model, row))
                continue
            except (DatabaseError, ValueError, TypeError) as exc:
                problem = _first_line(exc)
            # The edges break a rule of the table (a CHECK): an ordinary row instead.
            try:
                fallback = self._ordinary_row(model, columns)
                rows.append(self._insert(model, fallback))
                self.result.notes.append(
                    f"{table}: edge row {number + 1} was refused ({problem}); an ordinary row "
                    "was written instead"
                )
            except (DatabaseError, ValueError, TypeError) as exc:
                self.result.notes.append(
                    f"row {number + 1} of {table} could not be written by the previous "
                    f"release's model: {_first_line(exc)}"
                )
        self._delete_violations(model, rows)
        self._parents[table] = rows
        if rows:
            self.result.seeded[table] = len(rows)
        return rows

    def _ordinary_row(self, model: Any, columns: dict[str, list[Any]]) -> dict[str, Any]:
        """One more ordinary row: new values where the table wants them unique (a parent of
        its own for a one-to-one key)."""
        self._serial += 1
        unique = _unique_columns(model)
        try:
            after = self.end.apps.get_model(model._meta.app_label, model._meta.model_name)
            unique |= _unique_columns(after)
        except LookupError:
            pass
        row: dict[str, Any] = {}
        for name, column in columns.items():
            field = model._meta.get_field(name)
            value = column[4]
            if field.column in unique:
                if field.is_relation and value is not None:
                    parent = field.related_model
                    parent_columns = self._values(parent, set(self._parents))
                    if parent_columns is not None:
                        pk = self._insert(parent, self._ordinary_row(parent, parent_columns))
                        value = parent._base_manager.using(self.alias).get(pk=pk)
                else:
                    value = _probe_value(field, value, self._serial)
            row[name] = value
        return row

    def _insert(self, model: Any, values: dict[str, Any]) -> Any:
        instance = model(**values)
        with transaction.atomic(using=self.alias):
            instance.save(force_insert=True, using=self.alias)
        return instance.pk

    def _values(self, model: Any, seen: set[str]) -> dict[str, list[Any]] | None:
        """Values per field name for ROWS rows, or None (the table cannot be seeded)."""
        out: dict[str, list[Any]] = {}
        table = model._meta.db_table
        for field in model._meta.concrete_fields:
            if field.primary_key and (isinstance(field, models.AutoField) or field.has_default()):
                continue
            if getattr(field, "generated", False):
                continue
            after = self._after_field(model, field)
            nullable = field.null and (after is None or after.null or self._fills(model, field))
            if field.is_relation and (field.many_to_one or field.one_to_one):
                parent = field.related_model
                if parent is model:
                    if not field.null:
                        self.result.notes.append(
                            f"{table}: not seeded ({field.name} refers to "
                            "its own table and is NOT NULL)"
                        )
                        return None
                    out[field.name] = [None] * ROWS
                    continue
                parents = self._seed(parent, seen)
                if not parents and not field.null:
                    self.result.notes.append(
                        f"{table}: not seeded (no row of {parent._meta.db_table} to refer to)"
                    )
                    return None
                targets = [parent._base_manager.using(self.alias).get(pk=pk) for pk in parents]
                column = [targets[i % len(targets)] if targets else None for i in range(ROWS)]
                if field.one_to_one or field.unique:
                    column = [targets[i] if i < len(targets) else None for i in range(ROWS)]
                if nullable:
                    column[0] = None
                out[field.name] = column
                continue
            values = edge_values(field, after, self.connection)
            if values is None:
                if field.has_default():
                    values = [field.get_default() for _ in range(ROWS)]
                elif field.null:
                    values = [None] * ROWS
                else:
                    self.result.notes.append(
                        f"{table}: not seeded (no test values for {field.name}, "
                        f"{type(field).__name__})"
                    )
                    return None
            values = list(values)
            if nullable:
                values[0] = None
            out[field.name] = values
        return out

    def _fills(self, model: Any, field: Any) -> bool:
        return (model._meta.db_table, field.column) in self.fills

    def _delete_violations(self, model: Any, pks: list[Any]) -> None:
        """Rows the plan's own CHECK constraints refuse are not the plan's fault: remove them."""
        meta = model._meta
        try:
            after = self.end.apps.get_model(meta.app_label, meta.model_name)
        except LookupError:
            return
        checks = [c for c in after._meta.constraints if isinstance(c, models.CheckConstraint)]
        if not checks or not pks:
            return
        with self.connection.schema_editor(collect_sql=True, atomic=False) as editor:
            conditions = [str(c._get_check_sql(after, editor)) for c in checks]  # type: ignore[attr-defined]
        where = " AND ".join(f"({c})" for c in conditions)
        try:
            with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE {} = ANY(%s) AND NOT ({})").format(
                        sql.Identifier(meta.db_table),
                        sql.Identifier(meta.pk.column),
                        sql.SQL(where),  # Django's own SQL for the model's CHECK constraints
                    ),
                    [list(pks)],
                )
        except DatabaseError as exc:
            self.result.notes.append(
                f"{meta.db_table}: the plan's CHECK constraints could not be applied to the "
                f"seeded rows ({_first_line(exc)})"
            )

    # -- comparing -------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Every seeded row of every compared table that exists: key -> column -> value."""
        out: Snapshot = {}
        for table, model in self.models.items():
            seeded = self._parents.get(table, [])
            if not seeded:
                continue
            with self.connection.cursor() as cursor:
                if not self._exists(cursor, table):
                    self._dropped.add((table, "*"))
                    continue
                names = {
                    c.name
                    for c in self.connection.introspection.get_table_description(cursor, table)
                }
                for field in model._meta.concrete_fields:
                    if field.column not in names:
                        self._dropped.add((table, field.column))
                pk = model._meta.pk.column
                columns = [
                    f.column
                    for f in model._meta.concrete_fields
                    if f.column in names and (table, f.column) not in self._dropped
                ]
                if pk not in columns:
                    continue
                cursor.execute(
                    sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
                        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                        sql.Identifier(table),
                        sql.Identifier(pk),
                    ),
                    [list(seeded)],
                )
                rows: dict[tuple[Any, ...], dict[str, Any]] = {}
                for row in cursor.fetchall():
                    values = dict(zip(columns, row, strict=True))
                    rows[(values[pk],)] = values
                out[table] = rows
        return out

    @staticmethod
    def _exists(cursor: Any, table: str) -> bool:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{table}"'])
        return bool(cursor.fetchone()[0])

    def compare(self, before: Snapshot, after: Snapshot, where: str, *, fills: bool) -> None:
        """Every value of ``before`` is in ``after`` (NULLs may be filled where ``fills``).

        Tables and columns the plan drops are left out from the moment they are gone.
        """
        if self.rewrites is None:
            return
        for table, rows in before.items():
            if (table, "*") in self._dropped or (table, "*") in self.rewrites:
                continue
            now = after.get(table, {})
            for key, values in rows.items():
                current = now.get(key)
                if current is None:
                    self.result.errors.append(f"{where}: row {key[0]!r} of {table} is gone")
                    continue
                for column, value in values.items():
                    if column not in current or (table, column) in self._dropped:
                        continue
                    if (table, column) in self.rewrites:
                        continue
                    self.result.compared += 1
                    new = current[column]
                    if (
                        value is None
                        and new is not None
                        and fills
                        and (table, column) in self.fills
                    ):
                        continue
                    if new != value:
                        self.result.errors.append(
                            f"{where}: {table}.{column} of row {key[0]!r} was {_short(value)}, "
                            f"is {_short(new)}"
                        )

    def remove_seeded(self) -> bool:
        """Delete the seeded rows (children first); False when some could not go."""
        for table, pks in reversed(list(self._parents.items())):
            if not pks:
                continue
            model = self.models.get(table) or next(
                (m for m in self.start.apps.get_models() if m._meta.db_table == table), None
            )
            if model is None:
                continue
            try:
                with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
                    if not self._exists(cursor, table):
                        continue
                    cursor.execute(
                        sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                            sql.Identifier(table), sql.Identifier(model._meta.pk.column)
                        ),
                        [list(pks)],
                    )
            except DatabaseError as exc:
                self.result.notes.append(
                    f"the seeded rows of {table} could not be removed ({_first_line(exc)})"
                )
                return False
        return True

    def dropped_notes(self) -> None:
        for table, column in sorted(self._dropped):
            what = f"the table {table}" if column == "*" else f"{table}.{column}"
            self.result.notes.append(
                f"{what} goes with the plan: its values are compared only while it exists "
                "(migrating back restores the structure, not the data)"
            )

    # -- the previous release at work ------------------------------------------------------------
    def probe(self, where: str) -> None:
        """The previous release's INSERT, SELECT, UPDATE and DELETE on every compared table."""
        for table, model in self.models.items():
            if not self._parents.get(table):
                continue
            columns = self._values(model, set(self._parents))
            if columns is None:
                continue
            self._serial += 1
            values = self._ordinary_row(model, columns)
            manager = model._base_manager.using(self.alias)
            instance = model(**values)
            for statement in ("INSERT", "SELECT", "UPDATE", "DELETE"):
                try:
                    with transaction.atomic(using=self.alias):
                        if statement == "INSERT":
                            instance.save(force_insert=True, using=self.alias)
                        elif statement == "SELECT":
                            list(manager.filter(pk=instance.pk).values())
                        elif statement == "UPDATE":
                            instance.save(force_update=True, using=self.alias)
                        else:
                            manager.filter(pk=instance.pk).delete()
                    self.result.probes += 1
                except Exception as exc:
                    self.result.errors.append(
                        f"{where}: the previous release's {statement} on {table} failed: "
                        f"{_first_line(exc)}"
                    )
                    break


def _unique_columns(model: Any) -> set[str]:
    """Columns that are unique alone or with others (the probe's values must differ there)."""
    out: set[str] = set()
    # Multi-table inheritance: the parents' unique columns are written by the same INSERT.
    for owner in (model, *model._meta.get_parent_list()):
        meta = owner._meta
        out |= {f.column for f in meta.concrete_fields if f.unique}
        groups = [list(g) for g in meta.unique_together]
        groups += [list(c.fields) for c in meta.constraints if getattr(c, "fields", None)]
        for group in groups:
            for name in group:
                try:
                    out.add(meta.get_field(name).column)
                except Exception:  # an expression or an unknown name: nothing to vary
                    continue
    return out


def _probe_value(field: Any, value: Any, serial: int) -> Any:
    """An ordinary value no seeded row has (unique columns stay unique)."""
    if value is None or field.is_relation:
        return value
    if isinstance(value, str):
        text = f"p{serial}"
        limit = _max_length(field) or len(text)
        return text[-limit:] if limit else value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value + serial
    if isinstance(value, decimal.Decimal):
        digits = field.max_digits - field.decimal_places
        return decimal.Decimal(serial % (10**digits)) if digits > 0 else value / serial
    if isinstance(value, float):
        return value + serial
    if isinstance(value, datetime.datetime):
        return value + datetime.timedelta(days=serial)
    if isinstance(value, datetime.date):
        return value + datetime.timedelta(days=serial)
    if isinstance(value, uuid.UUID):
        return uuid.UUID(int=serial)
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
