"""Read SQL text into facts the rules can ask about.

Django's own SQL and hand-written ``RunSQL`` both go through :func:`parse`: it
splits statements with sqlparse (comments, dollar quoting, several statements
in one string) and recognises the statements that matter for locking. It never
raises: text it does not understand becomes a statement of kind ``other``.
"""

from __future__ import annotations

import dataclasses

# Statement kinds
CREATE_TABLE = "create_table"
CREATE_INDEX = "create_index"
DROP_INDEX = "drop_index"
REINDEX = "reindex"
ALTER_TABLE = "alter_table"
ALTER_INDEX = "alter_index"
DROP_TABLE = "drop_table"
RENAME = "rename"  # ALTER TABLE ... RENAME is an ALTER_TABLE action; this is for ALTER INDEX/SEQUENCE
INSERT = "insert"
UPDATE = "update"
DELETE = "delete"
TRUNCATE = "truncate"
LOCK = "lock"
VACUUM = "vacuum"
CLUSTER = "cluster"
REFRESH_MATVIEW = "refresh_materialized_view"
CREATE_TRIGGER = "create_trigger"
SET = "set"
TRANSACTION = "transaction"  # BEGIN, COMMIT, ROLLBACK, SAVEPOINT ...
SELECT = "select"
OTHER = "other"

# ALTER TABLE action kinds
ADD_COLUMN = "add_column"
DROP_COLUMN = "drop_column"
ALTER_TYPE = "alter_type"
SET_NOT_NULL = "set_not_null"
DROP_NOT_NULL = "drop_not_null"
SET_DEFAULT = "set_default"
DROP_DEFAULT = "drop_default"
ADD_CONSTRAINT = "add_constraint"
VALIDATE_CONSTRAINT = "validate_constraint"
DROP_CONSTRAINT = "drop_constraint"
RENAME_COLUMN = "rename_column"
RENAME_TABLE = "rename_table"
RENAME_CONSTRAINT = "rename_constraint"
ACTION_OTHER = "other"

# Constraint types
CHECK = "check"
FOREIGN_KEY = "foreign_key"
UNIQUE = "unique"
PRIMARY_KEY = "primary_key"
EXCLUDE = "exclude"
NOT_NULL = "not_null"  # PG18: ADD CONSTRAINT name NOT NULL col [NOT VALID]


@dataclasses.dataclass(frozen=True)
class AlterAction:
    """One comma-separated action of an ALTER TABLE statement."""

    kind: str
    column: str | None = None
    #: Constraint name, when the action names one.
    constraint: str | None = None
    #: CHECK, FOREIGN_KEY, UNIQUE, PRIMARY_KEY, EXCLUDE or NOT_NULL for ADD CONSTRAINT;
    constraint_type: str | None = None
    not_valid: bool = False
    #: ADD CONSTRAINT ... UNIQUE/PRIMARY KEY USING INDEX name
    using_index: str | None = None
    #: The new type (ADD COLUMN, ALTER COLUMN ... TYPE), as written, lowercased.
    data_type: str | None = None
    #: ALTER COLUMN ... TYPE ... USING expr
    using: str | None = None
    #: ADD COLUMN ... NOT NULL
    not_null: bool = False
    #: DEFAULT expression text (ADD COLUMN, SET DEFAULT), as written.
    default: str | None = None
    #: Inline column constraints of ADD COLUMN.
    inline_check: bool = False
    inline_references: str | None = None  # referenced table
    inline_unique: bool = False
    inline_primary_key: bool = False
    generated_stored: bool = False
    identity: bool = False
    #: Referenced table of an ADD CONSTRAINT ... FOREIGN KEY.
    references: str | None = None
    #: RENAME targets.
    new_name: str | None = None


@dataclasses.dataclass(frozen=True)
class SqlStatement:
    """Facts about one statement. Names are unquoted and without schema."""

    text: str
    kind: str = OTHER
    #: The table (or for DROP INDEX / REINDEX INDEX, the index) the statement acts on.
    table: str | None = None
    #: Index name for CREATE/DROP INDEX.
    index: str | None = None
    concurrently: bool = False
    unique: bool = False
    if_exists: bool = False
    #: UPDATE/DELETE have a WHERE clause.
    has_where: bool = False
    #: VACUUM FULL
    full: bool = False
    #: LOCK TABLE mode, uppercased ("ACCESS EXCLUSIVE" by default).
    lock_mode: str | None = None
    #: For REINDEX: TABLE, INDEX, SCHEMA, DATABASE or SYSTEM.
    target: str | None = None
    #: Every table the statement names (ALTER TABLE, DROP TABLE a, b, TRUNCATE a, b, LOCK a, b).
    tables: tuple[str, ...] = ()
    actions: tuple[AlterAction, ...] = ()

    @property
    def is_ddl(self) -> bool:
        return self.kind not in (INSERT, UPDATE, DELETE, SELECT, SET, TRANSACTION, OTHER)


def split(sql: str) -> list[str]:
    """Split text into statements (no empty ones, comments kept with their statement)."""
    raise NotImplementedError


def parse(sql: str) -> list[SqlStatement]:
    """Every statement in ``sql``, recognised as far as possible. Never raises."""
    raise NotImplementedError


def parse_one(sql: str) -> SqlStatement:
    """The first statement of ``sql`` (kind ``other`` for empty text)."""
    statements = parse(sql)
    return statements[0] if statements else SqlStatement(text=sql)
