"""Read SQL text into facts the rules can ask about.

Django's own SQL and hand-written ``RunSQL`` both go through :func:`parse`: it
splits statements with sqlparse, as ``RunSQL`` does (comments, dollar quoting,
several statements in one string), checks the pieces against PostgreSQL's
lexical rules, and recognises the statements that matter for locking. It never
raises: text it does not understand becomes a statement of kind ``other``.

Names are unquoted (``"my ""odd"" table"`` is ``my "odd" table``), unquoted
names are folded to lower case as PostgreSQL does, and schemas are dropped.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import sqlparse

# Statement kinds
CREATE_TABLE = "create_table"
CREATE_INDEX = "create_index"
DROP_INDEX = "drop_index"
REINDEX = "reindex"
ALTER_TABLE = "alter_table"
ALTER_INDEX = "alter_index"
DROP_TABLE = "drop_table"
RENAME = (
    "rename"  # ALTER TABLE ... RENAME is an ALTER_TABLE action; this is for ALTER INDEX/SEQUENCE
)
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
    #: The expression of a CHECK (ADD CONSTRAINT ... CHECK, or inline in ADD COLUMN),
    #: without its outer parentheses, as written (whitespace folded).
    expression: str | None = None
    #: RENAME targets.
    new_name: str | None = None


@dataclasses.dataclass(frozen=True)
class SqlStatement:
    """Facts about one statement. Names are unquoted and without schema."""

    text: str
    kind: str = OTHER
    #: The table the statement acts on (None for DROP INDEX and REINDEX INDEX: see ``index``;
    #: the sequence or view for ALTER SEQUENCE/VIEW ... RENAME).
    table: str | None = None
    #: Index name for CREATE/DROP INDEX, REINDEX INDEX, ALTER INDEX, CLUSTER ... USING.
    index: str | None = None
    concurrently: bool = False
    unique: bool = False
    #: IF EXISTS (DROP, ALTER) or IF NOT EXISTS (CREATE TABLE/INDEX) guard.
    if_exists: bool = False
    #: UPDATE/DELETE have a WHERE clause.
    has_where: bool = False
    #: VACUUM FULL
    full: bool = False
    #: LOCK TABLE mode, uppercased ("ACCESS EXCLUSIVE" by default).
    lock_mode: str | None = None
    #: For REINDEX: TABLE, INDEX, SCHEMA, DATABASE or SYSTEM; for RENAME: INDEX, SEQUENCE,
    #: VIEW or MATERIALIZED VIEW.
    target: str | None = None
    #: Every table the statement names (ALTER TABLE, DROP TABLE a, b, TRUNCATE a, b, LOCK a, b).
    tables: tuple[str, ...] = ()
    actions: tuple[AlterAction, ...] = ()

    @property
    def is_ddl(self) -> bool:
        return self.kind not in (INSERT, UPDATE, DELETE, SELECT, SET, TRANSACTION, OTHER)

    @property
    def builds_index(self) -> bool:
        """Builds an index while it holds its lock: CREATE INDEX without CONCURRENTLY, or a
        UNIQUE / PRIMARY KEY added by ALTER TABLE (not USING an existing index)."""
        if self.kind == CREATE_INDEX:
            return not self.concurrently
        return any(
            (
                action.kind == ADD_CONSTRAINT
                and action.constraint_type in (UNIQUE, PRIMARY_KEY)
                and not action.using_index
            )
            or action.inline_unique
            or action.inline_primary_key
            for action in self.actions
        )


# ---------------------------------------------------------------------------
# Lexing
# ---------------------------------------------------------------------------
#
# Statement boundaries come from ``sqlparse.split``, which is what Django's
# ``RunSQL`` uses to cut a string into the statements it executes. Each piece
# is then tokenised by a small lexer that follows PostgreSQL's own lexical rules
# (standard and E'' strings, nested block comments, dollar quoting, quoted
# identifiers) and split again where PostgreSQL would see more than one
# statement but sqlparse did not (``BEGIN ISOLATION LEVEL ...; ...``, a
# backslash before a closing quote, ``#`` read as a MySQL comment). Very long
# text skips sqlparse, whose pure-Python lexer is slow, and uses that lexer
# alone. Everything here is linear in the length of the text.

#: Longer text is split by the local lexer only.
_SQLPARSE_MAX_CHARS = 32_000

_IDENT = "ident"
_QIDENT = "qident"
_STRING = "string"
_DOLLAR = "dollar"
_NUMBER = "number"
_PARAM = "param"
_OP = "op"
_COMMENT = "comment"

# Identifier characters: letters, "_" and every character beyond ASCII (digits and,
# in an identifier, "$" after the first). Spelled as what they are not: the same
# sets, and compiling the class of every code point above 0x7f took 27 ms of each
# command's start.
_ID_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"
_ID_CONT = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
_IDENT_CONT = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"

#: One token after optional whitespace (no group matches: only whitespace was left).
_TOKEN_RE = re.compile(
    r"[ \t\n\r\f\v]*(?:"
    r"(?P<line>--[^\n\r]*)"
    r"|(?P<block>/\*)"
    r"|(?P<estring>[eE]'(?:[^'\\]+|\\[\s\S]?|'')*'?)"
    r"|(?P<string>(?:[bBxXnN]|[uU]&)?'(?:[^']+|'')*'?)"
    r'|(?P<qident>(?:[uU]&)?"(?:[^"]+|"")*"?)'
    rf"|(?P<dollar>\$(?:{_ID_START}{_ID_CONT}*)?\$)"
    r"|(?P<param>\$\d+)"
    r"|(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    rf"|(?P<ident>{_ID_START}{_IDENT_CONT}*)"
    r"|(?P<op>::|[\s\S])"
    r")?"
)
_BLOCK_RE = re.compile(r"/\*|\*/")
_KINDS = {
    "line": _COMMENT,
    "block": _COMMENT,
    "estring": _STRING,
    "string": _STRING,
    "qident": _QIDENT,
    "dollar": _DOLLAR,
    "param": _PARAM,
    "number": _NUMBER,
    "ident": _IDENT,
    "op": _OP,
}
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class _Tok(NamedTuple):
    kind: str
    value: str
    start: int
    end: int


def _tokenize(src: str) -> list[_Tok]:
    """PostgreSQL tokens of ``src`` without whitespace; unterminated ones run to the end."""
    toks: list[_Tok] = []
    append = toks.append
    match = _TOKEN_RE.match
    n = len(src)
    pos = 0
    new = tuple.__new__
    while pos < n:
        m = match(src, pos)
        if m is None or m.lastgroup is None:  # only whitespace is left
            break
        group = m.lastgroup
        pos = m.start(group)
        end = m.end()
        if group == "block":
            depth = 1
            while depth:
                b = _BLOCK_RE.search(src, end)
                if b is None:
                    end = n
                    break
                end = b.end()
                depth += 1 if b.group() == "/*" else -1
        elif group == "dollar":
            close = src.find(src[pos:end], end)
            end = n if close < 0 else close + (end - pos)
        append(new(_Tok, (_KINDS[group], src[pos:end], pos, end)))
        pos = end
    return toks


def _word(tok: _Tok) -> str:
    return tok.value.upper() if tok.kind == _IDENT else ""


def _unquote(tok: _Tok) -> str:
    if tok.kind == _QIDENT:
        value = tok.value
        if value[:1] in "uU":
            value = value[2:]
        value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
        return value.replace('""', '"')
    return tok.value.translate(_ASCII_LOWER)


# A statement: (source text, start offset, end offset, significant tokens).
# The tokens carry offsets into the source text and exclude comments and the
# terminating semicolon.
_Piece = tuple[str, int, int, list[_Tok]]


def _split_tokens(src: str, toks: list[_Tok]) -> list[_Piece]:
    """Cut at top-level semicolons the way psql does (parentheses, BEGIN ATOMIC bodies)."""
    out: list[_Piece] = []
    n = len(toks)
    first = -1  # index of the statement's first token (comments included)
    sig: list[_Tok] = []
    paren = 0
    begin = 0
    routine = False  # CREATE [OR REPLACE] FUNCTION/PROCEDURE: BEGIN ... END nests
    i = 0
    while i < n:
        tok = toks[i]
        if first < 0:
            first = i
        if tok.kind == _OP:
            value = tok.value
            if value == ";" and paren == 0 and begin == 0:
                last = i
                # A comment on the same line after the semicolon stays with the statement.
                if (
                    i + 1 < n
                    and toks[i + 1].kind == _COMMENT
                    and toks[i + 1].value.startswith("--")
                    and not any(c in src[tok.end : toks[i + 1].start] for c in "\n\r")
                ):
                    last = i + 1
                if sig:
                    out.append((src, toks[first].start, toks[last].end, sig))
                sig = []
                first = -1
                paren = begin = 0
                routine = False
                i = last + 1
                continue
            if value == "(":
                paren += 1
            elif value == ")" and paren:
                paren -= 1
        elif tok.kind == _IDENT:
            if len(sig) < 4:
                words = [_word(t) for t in sig if t.kind == _IDENT] + [_word(tok)]
                routine = words[:1] == ["CREATE"] and (
                    words[1:2] in (["FUNCTION"], ["PROCEDURE"])
                    or (
                        words[1:3] == ["OR", "REPLACE"]
                        and words[3:4] in (["FUNCTION"], ["PROCEDURE"])
                    )
                )
            if routine and paren == 0:
                word = _word(tok)
                if word == "BEGIN" or (word == "CASE" and begin):  # CASE ... END nests too
                    begin += 1
                elif word == "END" and begin:
                    begin -= 1
        if tok.kind != _COMMENT:
            sig.append(tok)
        i += 1
    if sig:
        last_tok = toks[n - 1]
        out.append((src, toks[first].start, last_tok.end, sig))
    return out


def _own_pieces(src: str) -> list[_Piece]:
    return _split_tokens(src, _tokenize(src))


def _pieces(sql: str) -> list[_Piece]:
    body = sql.rstrip()
    if body.endswith(";"):
        body = body[:-1]
    if len(sql) > _SQLPARSE_MAX_CHARS or (";" not in body and "GO" not in body):
        # Long text, or text sqlparse would return whole anyway.
        return _own_pieces(sql)
    try:
        parts = sqlparse.split(sql)
    except Exception:
        return _own_pieces(sql)
    out: list[_Piece] = []
    for part in parts:
        if isinstance(part, str) and part:
            out.extend(_own_pieces(part))
    return out


def _as_text(sql: object) -> str:
    if isinstance(sql, str):
        return sql
    if isinstance(sql, (bytes, bytearray)):
        return bytes(sql).decode("utf-8", "replace")
    return "" if sql is None else str(sql)


def tokens(sql: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of every token of ``sql`` but comments, as PostgreSQL reads them.

    Kinds: ``ident`` (text as written), ``qident``, ``string``, ``dollar``,
    ``number``, ``param``, ``op``. Strings and dollar-quoted bodies are one
    token each, quotes included.
    """
    return [(t.kind, t.value) for t in _tokenize(sql) if t.kind != _COMMENT]


def split(sql: str) -> list[str]:
    """Split text into statements (no empty ones, comments kept with their statement).

    A statement keeps its terminating semicolon and a comment on the same line after it;
    comments before a statement belong to it; comment-only text is dropped.
    """
    try:
        return [src[start:end] for src, start, end, _ in _pieces(_as_text(sql))]
    except Exception:  # pragma: no cover - defensive: never raise on user SQL
        text = _as_text(sql).strip()
        return [text] if text else []


def parse(sql: str) -> list[SqlStatement]:
    """Every statement in ``sql``, recognised as far as possible. Never raises."""
    try:
        pieces = _pieces(_as_text(sql))
    except Exception:  # pragma: no cover - defensive: never raise on user SQL
        text = _as_text(sql).strip()
        return [SqlStatement(text=text)] if text else []
    return [_statement(src, start, end, toks) for src, start, end, toks in pieces]


# ---------------------------------------------------------------------------
# Recognising statements
# ---------------------------------------------------------------------------

_OPEN = frozenset("([")
_CLOSE = frozenset(")]")


class _Cursor:
    """A position in a list of significant tokens (``n`` bounds the view)."""

    __slots__ = ("i", "n", "toks")

    def __init__(self, toks: list[_Tok], i: int = 0, n: int | None = None) -> None:
        self.toks = toks
        self.i = i
        self.n = len(toks) if n is None else n

    def done(self) -> bool:
        return self.i >= self.n

    def kw(self, k: int = 0) -> str:
        j = self.i + k
        return _word(self.toks[j]) if j < self.n else ""

    def op(self, k: int = 0) -> str:
        j = self.i + k
        if j < self.n and self.toks[j].kind == _OP:
            return self.toks[j].value
        return ""

    def peek(self, *words: str) -> bool:
        return all(self.kw(k) == w for k, w in enumerate(words))

    def accept(self, *words: str) -> bool:
        if self.peek(*words):
            self.i += len(words)
            return True
        return False

    def accept_op(self, value: str) -> bool:
        if self.op() == value:
            self.i += 1
            return True
        return False

    def ident(self) -> str | None:
        """One identifier, unquoted."""
        if self.i < self.n and self.toks[self.i].kind in (_IDENT, _QIDENT):
            self.i += 1
            return _unquote(self.toks[self.i - 1])
        return None

    def name(self) -> str | None:
        """A possibly schema-qualified name: its last part, unquoted."""
        name = self.ident()
        while name is not None and self.op() == "." and self.i + 1 < self.n:
            nxt = self.toks[self.i + 1]
            if nxt.kind not in (_IDENT, _QIDENT):
                break
            self.i += 2
            name = _unquote(nxt)
        return name

    def names(self) -> list[str]:
        """``[ONLY] name [*] [, ...]``"""
        out: list[str] = []
        while True:
            self.accept("ONLY")
            name = self.name()
            if name is None:
                break
            out.append(name)
            self.accept_op("*")
            if not self.accept_op(","):
                break
        return out

    def skip(self) -> None:
        """Step over one token, or a whole bracketed group."""
        if self.op() not in _OPEN:
            self.i += 1
            return
        depth = 0
        while self.i < self.n:
            value = self.op()
            if value in _OPEN:
                depth += 1
            elif value in _CLOSE:
                depth -= 1
                if depth == 0:
                    self.i += 1
                    return
            self.i += 1

    def group(self) -> list[list[_Tok]]:
        """The comma-separated items of the bracketed group here (consumed)."""
        if self.op() != "(":
            return []
        start = self.i
        self.skip()
        end = self.i - 1 if self.i <= self.n and self.toks[self.i - 1].value == ")" else self.i
        return _split_commas(self.toks[start + 1 : end])

    def rest(self) -> list[_Tok]:
        out = self.toks[self.i : self.n]
        self.i = self.n
        return out


def _split_commas(toks: list[_Tok]) -> list[list[_Tok]]:
    items: list[list[_Tok]] = [[]]
    depth = 0
    for tok in toks:
        if tok.kind == _OP:
            if tok.value in _OPEN:
                depth += 1
            elif tok.value in _CLOSE:
                depth = max(0, depth - 1)
            elif tok.value == "," and depth == 0:
                items.append([])
                continue
        items[-1].append(tok)
    return [item for item in items if item]


def _group_text(c: _Cursor) -> str | None:
    """The text inside the bracketed group here (consumed), or None."""
    if c.op() != "(":
        c.skip()
        return None
    start = c.i
    c.skip()
    closed = c.i <= c.n and c.toks[c.i - 1].value == ")"
    inner = c.toks[start + 1 : c.i - 1 if closed else c.i]
    return _join(inner) or None


def _join(toks: list[_Tok]) -> str:
    """Tokens as text: one space where the source had whitespace or a comment."""
    parts: list[str] = []
    prev = -1
    for tok in toks:
        if parts and tok.start > prev:
            parts.append(" ")
        parts.append(tok.value)
        prev = tok.end
    return "".join(parts)


def _find_top(c: _Cursor, words: frozenset[str], start: int | None = None) -> int:
    """Index of the first of ``words`` outside brackets and CASE ... END, or -1."""
    depth = 0
    case = 0
    for j in range(c.i if start is None else start, c.n):
        tok = c.toks[j]
        if tok.kind == _OP:
            if tok.value in _OPEN:
                depth += 1
            elif tok.value in _CLOSE:
                depth = max(0, depth - 1)
        elif tok.kind == _IDENT and depth == 0:
            word = tok.value.upper()
            if word == "CASE":
                case += 1
            elif word == "END" and case:
                case -= 1
            elif case == 0 and word in words:
                return j
    return -1


def _option_on(item: list[_Tok]) -> bool:
    """``FULL``, ``FULL true``, ``FULL 1``... but not ``FULL false``/``off``/``0``."""
    if len(item) < 2:
        return True
    value = item[1].value.strip("'").lower()
    return value not in ("false", "off", "0", "no")


def _statement(src: str, start: int, end: int, toks: list[_Tok]) -> SqlStatement:
    text = src[start:end]
    try:
        return SqlStatement(text=text, **_recognise(_Cursor(toks)))
    except Exception:  # never raise on user SQL: unknown is "other"
        return SqlStatement(text=text)


_MAIN_AFTER_WITH = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE"})
_DML = frozenset({"INSERT", "UPDATE", "DELETE"})
_TRANSACTION_WORDS = frozenset(
    {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END", "ABORT"}
)


def _recognise(c: _Cursor) -> dict[str, Any]:
    while c.op() == "(":  # (SELECT ...) UNION ...
        c.i += 1
    word = c.kw()
    if word == "WITH":
        return _with(c)
    handler = _HANDLERS.get(word)
    if handler is not None:
        return handler(c)
    if word in _TRANSACTION_WORDS or (word in ("START", "PREPARE") and c.kw(1) == "TRANSACTION"):
        return {"kind": TRANSACTION}
    return {}


def _with(c: _Cursor) -> dict[str, Any]:
    """``WITH ... UPDATE`` is an update; ``WITH x AS (UPDATE ...) SELECT`` too."""
    main = _find_top(c, _MAIN_AFTER_WITH, c.i + 1)
    if main < 0:
        return {}
    if _word(c.toks[main]) == "SELECT":
        # A data-modifying CTE: WITH x AS (DELETE FROM t ... RETURNING *) SELECT ...
        for j in range(c.i + 2, main):
            prev = c.toks[j - 1]
            if prev.kind == _OP and prev.value == "(" and _word(c.toks[j]) in _DML:
                return _dml_in_group(c.toks, j, main)
    c.i = main
    handler = _HANDLERS.get(c.kw())
    return handler(c) if handler is not None else {}


def _dml_in_group(toks: list[_Tok], j: int, limit: int) -> dict[str, Any]:
    depth = 1
    k = j
    while k < limit and depth:
        value = toks[k].value if toks[k].kind == _OP else ""
        if value in _OPEN:
            depth += 1
        elif value in _CLOSE:
            depth -= 1
        k += 1
    end = k - 1 if depth == 0 else k
    inner = _Cursor(toks, j, end)
    return _HANDLERS[inner.kw()](inner)


def _create(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    while c.kw() in ("OR", "REPLACE", "GLOBAL", "LOCAL", "TEMP", "TEMPORARY", "UNLOGGED"):
        c.i += 1
    unique = c.accept("UNIQUE")
    if c.accept("INDEX"):
        concurrently = c.accept("CONCURRENTLY")
        if_exists = c.accept("IF", "NOT", "EXISTS")
        index = None if c.kw() == "ON" else c.name()
        table = None
        if c.accept("ON"):
            c.accept("ONLY")
            table = c.name()
        return {
            "kind": CREATE_INDEX,
            "index": index,
            "table": table,
            "tables": (table,) if table else (),
            "unique": unique,
            "concurrently": concurrently,
            "if_exists": if_exists,
        }
    if unique:
        return {}
    if c.accept("TABLE"):
        if_exists = c.accept("IF", "NOT", "EXISTS")
        table = c.name()
        return {
            "kind": CREATE_TABLE,
            "table": table,
            "tables": (table,) if table else (),
            "if_exists": if_exists,
        }
    c.accept("CONSTRAINT")
    if c.accept("TRIGGER"):
        on = _find_top(c, frozenset({"ON"}))
        table = None
        if on >= 0:
            c.i = on + 1
            table = c.name()
        return {"kind": CREATE_TRIGGER, "table": table, "tables": (table,) if table else ()}
    return {}


def _drop(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    if c.accept("INDEX"):
        concurrently = c.accept("CONCURRENTLY")
        if_exists = c.accept("IF", "EXISTS")
        names = c.names()
        return {
            "kind": DROP_INDEX,
            "index": names[0] if names else None,
            "concurrently": concurrently,
            "if_exists": if_exists,
        }
    if c.accept("TABLE"):
        if_exists = c.accept("IF", "EXISTS")
        names = c.names()
        return {
            "kind": DROP_TABLE,
            "table": names[0] if names else None,
            "tables": tuple(names),
            "if_exists": if_exists,
        }
    return {}


def _reindex(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    concurrently = False
    for item in c.group():
        if _word(item[0]) == "CONCURRENTLY" and _option_on(item):
            concurrently = True
    target = c.kw()
    if target not in ("INDEX", "TABLE", "SCHEMA", "DATABASE", "SYSTEM"):
        return {"kind": REINDEX, "concurrently": concurrently}
    c.i += 1
    if c.accept("CONCURRENTLY"):
        concurrently = True
    name = c.name()
    out: dict[str, Any] = {"kind": REINDEX, "target": target, "concurrently": concurrently}
    if target == "INDEX":
        out["index"] = name
    elif target == "TABLE" and name:
        out["table"] = name
        out["tables"] = (name,)
    return out


def _alter(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    if c.accept("TABLE"):
        return _alter_table(c)
    if c.accept("INDEX"):
        if_exists = c.accept("IF", "EXISTS")
        if c.peek("ALL", "IN"):
            return {"kind": ALTER_INDEX, "if_exists": if_exists}
        index = c.name()
        if c.accept("RENAME", "TO"):
            return {"kind": RENAME, "target": "INDEX", "index": index, "if_exists": if_exists}
        return {"kind": ALTER_INDEX, "index": index, "if_exists": if_exists}
    target = None
    if c.accept("SEQUENCE"):
        target = "SEQUENCE"
    elif c.accept("VIEW"):
        target = "VIEW"
    elif c.accept("MATERIALIZED", "VIEW"):
        target = "MATERIALIZED VIEW"
    if target is not None:
        if_exists = c.accept("IF", "EXISTS")
        name = c.name()
        if c.accept("RENAME", "TO"):
            return {"kind": RENAME, "target": target, "table": name, "if_exists": if_exists}
    return {}


def _alter_table(c: _Cursor) -> dict[str, Any]:
    if_exists = c.accept("IF", "EXISTS")
    if c.peek("ALL", "IN"):  # ALTER TABLE ALL IN TABLESPACE ...
        return {
            "kind": ALTER_TABLE,
            "if_exists": if_exists,
            "actions": (AlterAction(ACTION_OTHER),),
        }
    c.accept("ONLY")
    table = c.name()
    c.accept_op("*")
    return {
        "kind": ALTER_TABLE,
        "table": table,
        "tables": (table,) if table else (),
        "if_exists": if_exists,
        "actions": tuple(_action(item) for item in _split_commas(c.rest())),
    }


def _truncate(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    c.accept("TABLE")
    names = c.names()
    return {"kind": TRUNCATE, "table": names[0] if names else None, "tables": tuple(names)}


def _lock(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    c.accept("TABLE")
    names = c.names()
    mode = "ACCESS EXCLUSIVE"
    if c.accept("IN"):
        words: list[str] = []
        while not c.done() and c.kw() not in ("MODE", ""):
            words.append(c.kw())
            c.i += 1
        if words:
            mode = " ".join(words)
    return {
        "kind": LOCK,
        "table": names[0] if names else None,
        "tables": tuple(names),
        "lock_mode": mode,
    }


def _vacuum(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    full = False
    for item in c.group():
        if _word(item[0]) == "FULL" and _option_on(item):
            full = True
    while c.kw() in ("FULL", "FREEZE", "VERBOSE", "ANALYZE", "ANALYSE"):
        full = full or c.kw() == "FULL"
        c.i += 1
    names: list[str] = []
    while True:
        name = c.name()
        if name is None:
            break
        names.append(name)
        if c.op() == "(":
            c.skip()
        if not c.accept_op(","):
            break
    return {
        "kind": VACUUM,
        "full": full,
        "table": names[0] if names else None,
        "tables": tuple(names),
    }


def _cluster(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    c.accept("VERBOSE")
    if c.op() == "(":
        c.skip()
    table = index = None
    first = c.name()
    if first is not None and c.accept("ON"):  # CLUSTER index ON table (old syntax)
        index, table = first, c.name()
    elif first is not None:
        table = first
        if c.accept("USING"):
            index = c.ident()
    return {"kind": CLUSTER, "table": table, "index": index, "tables": (table,) if table else ()}


def _refresh(c: _Cursor) -> dict[str, Any]:
    if not c.accept("REFRESH", "MATERIALIZED", "VIEW"):
        return {}
    concurrently = c.accept("CONCURRENTLY")
    name = c.name()
    return {
        "kind": REFRESH_MATVIEW,
        "concurrently": concurrently,
        "table": name,
        "tables": (name,) if name else (),
    }


_WHERE = frozenset({"WHERE"})


def _update(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    c.accept("ONLY")
    table = c.name()
    c.accept_op("*")
    return {
        "kind": UPDATE,
        "table": table,
        "tables": (table,) if table else (),
        "has_where": _find_top(c, _WHERE) >= 0,
    }


def _delete(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    c.accept("FROM")
    c.accept("ONLY")
    table = c.name()
    c.accept_op("*")
    return {
        "kind": DELETE,
        "table": table,
        "tables": (table,) if table else (),
        "has_where": _find_top(c, _WHERE) >= 0,
    }


def _insert(c: _Cursor) -> dict[str, Any]:
    c.i += 1
    c.accept("INTO")
    table = c.name()
    return {"kind": INSERT, "table": table, "tables": (table,) if table else ()}


def _kind(kind: str) -> Any:
    return lambda c: {"kind": kind}


_HANDLERS: dict[str, Any] = {
    "CREATE": _create,
    "DROP": _drop,
    "REINDEX": _reindex,
    "ALTER": _alter,
    "TRUNCATE": _truncate,
    "LOCK": _lock,
    "VACUUM": _vacuum,
    "CLUSTER": _cluster,
    "REFRESH": _refresh,
    "UPDATE": _update,
    "DELETE": _delete,
    "INSERT": _insert,
    "SELECT": _kind(SELECT),
    "VALUES": _kind(SELECT),
    "SET": _kind(SET),
    "RESET": _kind(SET),
}


# ---------------------------------------------------------------------------
# ALTER TABLE actions
# ---------------------------------------------------------------------------

#: Words that end a column's data type in ADD COLUMN.
_COLUMN_CLAUSES = frozenset(
    {
        "CONSTRAINT",
        "NOT",
        "NULL",
        "DEFAULT",
        "CHECK",
        "REFERENCES",
        "UNIQUE",
        "PRIMARY",
        "GENERATED",
        "COLLATE",
        "DEFERRABLE",
        "INITIALLY",
        "COMPRESSION",
        "STORAGE",
    }
)
_SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})
_ADD_CONSTRAINT_WORDS = frozenset(
    {"CONSTRAINT", "CHECK", "UNIQUE", "PRIMARY", "FOREIGN", "EXCLUDE"}
)


def _action(toks: list[_Tok]) -> AlterAction:
    try:
        return _parse_action(_Cursor(toks))
    except Exception:  # pragma: no cover - defensive
        return AlterAction(ACTION_OTHER)


def _parse_action(c: _Cursor) -> AlterAction:
    if c.accept("ADD"):
        if c.accept("COLUMN"):
            return _add_column(c)
        if c.kw() in _ADD_CONSTRAINT_WORDS or c.peek("NOT", "NULL"):
            return _add_constraint(c)
        return _add_column(c)
    if c.accept("DROP"):
        if c.accept("CONSTRAINT"):
            c.accept("IF", "EXISTS")
            return AlterAction(DROP_CONSTRAINT, constraint=c.ident())
        c.accept("COLUMN")
        c.accept("IF", "EXISTS")
        column = c.ident()
        return AlterAction(DROP_COLUMN if column else ACTION_OTHER, column=column)
    if c.accept("ALTER"):
        if c.accept("CONSTRAINT"):
            return AlterAction(ACTION_OTHER, constraint=c.ident())
        c.accept("COLUMN")
        return _alter_column(c)
    if c.accept("VALIDATE", "CONSTRAINT"):
        return AlterAction(VALIDATE_CONSTRAINT, constraint=c.ident())
    if c.accept("RENAME"):
        if c.accept("CONSTRAINT"):
            old = c.ident()
            c.accept("TO")
            return AlterAction(RENAME_CONSTRAINT, constraint=old, new_name=c.ident())
        if c.accept("TO"):
            return AlterAction(RENAME_TABLE, new_name=c.name())
        c.accept("COLUMN")
        old = c.ident()
        c.accept("TO")
        return AlterAction(RENAME_COLUMN, column=old, new_name=c.ident())
    return AlterAction(ACTION_OTHER)


def _add_column(c: _Cursor) -> AlterAction:
    c.accept("IF", "NOT", "EXISTS")
    column = c.ident()
    if column is None:
        return AlterAction(ACTION_OTHER)
    end = _find_top(c, _COLUMN_CLAUSES)
    type_toks = c.toks[c.i : c.n if end < 0 else end]
    c.i += len(type_toks)
    data_type = _join(type_toks).lower() or None
    facts: dict[str, Any] = {
        "column": column,
        "data_type": data_type,
        "identity": data_type in _SERIAL_TYPES,
    }
    while not c.done():
        word = c.kw()
        if word == "CONSTRAINT":
            c.i += 1
            name = c.ident()
            facts.setdefault("constraint", name)
        elif c.accept("NOT", "NULL"):
            facts["not_null"] = True
        elif word == "DEFAULT":
            c.i += 1
            end = _find_top(c, _COLUMN_CLAUSES)
            if end == c.i:  # DEFAULT NULL: the first word is always the expression's
                end = _find_top(c, _COLUMN_CLAUSES, c.i + 1)
            expr = c.toks[c.i : c.n if end < 0 else end]
            c.i += len(expr)
            facts["default"] = _join(expr) or None
        elif word == "CHECK":
            c.i += 1
            facts["inline_check"] = True
            facts["expression"] = _group_text(c)
        elif word == "REFERENCES":
            c.i += 1
            facts["inline_references"] = c.name()
            if c.op() == "(":
                c.skip()
            _skip_references_tail(c)
        elif word == "UNIQUE":
            c.i += 1
            facts["inline_unique"] = True
            c.accept("NULLS", "NOT", "DISTINCT") or c.accept("NULLS", "DISTINCT")
        elif c.accept("PRIMARY", "KEY"):
            facts["inline_primary_key"] = True
        elif word == "GENERATED":
            c.i += 1
            c.accept("ALWAYS") or c.accept("BY", "DEFAULT")
            if c.accept("AS"):
                if c.accept("IDENTITY"):
                    facts["identity"] = True
                elif c.op() == "(":
                    c.skip()
                    if c.accept("STORED"):
                        facts["generated_stored"] = True
        else:
            c.skip()
    return AlterAction(ADD_COLUMN, **facts)


def _skip_references_tail(c: _Cursor) -> None:
    """MATCH ... and ON DELETE/UPDATE actions (which contain SET NULL / SET DEFAULT)."""
    while True:
        if c.accept("MATCH"):
            c.i += 1
        elif c.kw() == "ON" and c.kw(1) in ("DELETE", "UPDATE"):
            c.i += 2
            if c.accept("SET"):
                c.i += 1  # NULL / DEFAULT
                if c.op() == "(":
                    c.skip()
            else:
                c.accept("NO", "ACTION") or c.accept("RESTRICT") or c.accept("CASCADE")
        else:
            return


def _columns(c: _Cursor) -> list[str]:
    names: list[str] = []
    for item in c.group():
        if item[0].kind in (_IDENT, _QIDENT):
            names.append(_unquote(item[0]))
    return names


def _add_constraint(c: _Cursor) -> AlterAction:
    name = c.ident() if c.accept("CONSTRAINT") else None
    facts: dict[str, Any] = {"constraint": name}
    if c.accept("CHECK"):
        facts["constraint_type"] = CHECK
        facts["expression"] = _group_text(c)
    elif c.accept("UNIQUE") or c.accept("PRIMARY", "KEY"):
        facts["constraint_type"] = UNIQUE if _word(c.toks[c.i - 1]) == "UNIQUE" else PRIMARY_KEY
        c.accept("NULLS", "NOT", "DISTINCT") or c.accept("NULLS", "DISTINCT")
        if c.accept("USING", "INDEX"):
            facts["using_index"] = c.ident()
        else:
            columns = _columns(c)
            if len(columns) == 1:
                facts["column"] = columns[0]
    elif c.accept("FOREIGN", "KEY"):
        facts["constraint_type"] = FOREIGN_KEY
        columns = _columns(c)
        if len(columns) == 1:
            facts["column"] = columns[0]
        if c.accept("REFERENCES"):
            facts["references"] = c.name()
    elif c.accept("EXCLUDE"):
        facts["constraint_type"] = EXCLUDE
    elif c.accept("NOT", "NULL"):
        facts["constraint_type"] = NOT_NULL
        facts["column"] = c.ident()
    else:
        return AlterAction(ACTION_OTHER, constraint=name)
    while not c.done():
        if c.accept("NOT", "VALID"):
            facts["not_valid"] = True
        else:
            c.skip()
    return AlterAction(ADD_CONSTRAINT, **facts)


_TYPE_END = frozenset({"COLLATE", "USING"})


def _alter_column(c: _Cursor) -> AlterAction:
    column = c.ident()
    if column is None:
        return AlterAction(ACTION_OTHER)
    if c.accept("TYPE") or c.accept("SET", "DATA", "TYPE"):
        end = _find_top(c, _TYPE_END)
        type_toks = c.toks[c.i : c.n if end < 0 else end]
        c.i += len(type_toks)
        if c.accept("COLLATE"):
            c.name()
        using = None
        if c.accept("USING"):
            using = _join(c.rest()) or None
        return AlterAction(
            ALTER_TYPE, column=column, data_type=_join(type_toks).lower() or None, using=using
        )
    if c.accept("SET", "NOT", "NULL"):
        return AlterAction(SET_NOT_NULL, column=column)
    if c.accept("DROP", "NOT", "NULL"):
        return AlterAction(DROP_NOT_NULL, column=column)
    if c.accept("SET", "DEFAULT"):
        return AlterAction(SET_DEFAULT, column=column, default=_join(c.rest()) or None)
    if c.accept("DROP", "DEFAULT"):
        return AlterAction(DROP_DEFAULT, column=column)
    return AlterAction(ACTION_OTHER, column=column)


def parse_one(sql: str) -> SqlStatement:
    """The first statement of ``sql`` (kind ``other`` for empty text)."""
    statements = parse(sql)
    return statements[0] if statements else SqlStatement(text=sql)


# ---------------------------------------------------------------------------
# Function volatility
# ---------------------------------------------------------------------------
#
# Whether a DEFAULT is computed once (constant, STABLE: catalog-only on PG11+)
# or per row (VOLATILE: a table rewrite) is PostgreSQL's own knowledge:
# ``pg_proc.provolatile``. Both the audit and the planner ask here. With a
# server at hand (the audit's scratch database, after the migrations before
# the one judged), its catalog answers, extensions and the project's own
# functions included. Without one (the planner writing files, a rule run on
# its own) a snapshot of that catalog answers: ``pg_functions.txt``, generated
# from PostgreSQL 15 (with pgcrypto and uuid-ossp) and 18 (tests/test_sqlfacts.py
# checks it against the session's server; UPDATE_GOLDEN=1 merges that server in).
# A name neither source knows is taken as VOLATILE, PostgreSQL's own default for
# a function created without a volatility: the fallback may ask for a backfill
# that was not needed, never miss a rewrite.

#: Live catalog: names with any VOLATILE overload, every function name, and the
#: keywords that look like calls (``COALESCE(...)``, ``CAST(...)``).
CATALOG_QUERY = """
SELECT p.proname, bool_or(p.provolatile = 'v') FROM pg_proc p GROUP BY p.proname
"""
KEYWORDS_QUERY = "SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'C', 'T')"
SNAPSHOT = "pg_functions.txt"


@dataclasses.dataclass(frozen=True)
class Volatility:
    """Which function names PostgreSQL evaluates per row."""

    #: Names with at least one VOLATILE overload.
    volatile: frozenset[str]
    #: Names known to be STABLE or IMMUTABLE in every overload.
    other: frozenset[str]
    #: Keywords written like calls (never volatile).
    keywords: frozenset[str]
    #: "pg_proc" (a live server) or "snapshot".
    origin: str

    def is_volatile(self, name: str) -> bool:
        """``name`` (unquoted) is VOLATILE, or unknown and so taken as VOLATILE."""
        name = name.lower()
        if name in self.volatile:
            return True
        return name not in self.other and name not in self.keywords

    def first_volatile(self, expression: str | None) -> str | None:
        """The first function ``expression`` calls that is volatile (lowercased), or None."""
        for name in function_calls(expression or ""):
            if self.is_volatile(name):
                return name
        return None


def function_calls(expression: str) -> list[str]:
    """Names of the functions ``expression`` calls, in order, lowercased.

    ``name(`` where ``name`` is no type: what follows ``::`` or ``AS`` (casts,
    ``character varying(20)``) is skipped. A schema qualifier is dropped.
    """
    toks = [t for t in _tokenize(expression) if t.kind != _COMMENT]
    out: list[str] = []
    i = 0
    n = len(toks)
    while i < n:
        tok = toks[i]
        if (tok.kind == _OP and tok.value == "::") or _word(tok) == "AS":
            i = _skip_type(toks, i + 1)
            continue
        if (
            tok.kind in (_IDENT, _QIDENT)
            and i + 1 < n
            and toks[i + 1].kind == _OP
            and toks[i + 1].value == "("
        ):
            out.append(_unquote(tok).lower() if tok.kind == _QIDENT else tok.value.lower())
        i += 1
    return out


def _skip_type(toks: list[_Tok], i: int) -> int:
    """Index of the first token after the type name that starts at ``i``."""
    n = len(toks)
    while i < n:
        tok = toks[i]
        if tok.kind in (_IDENT, _QIDENT) or (tok.kind == _OP and tok.value == "."):
            i += 1
        elif tok.kind == _OP and tok.value in "([" and i > 0 and toks[i - 1].kind != _OP:
            close = ")" if tok.value == "(" else "]"
            depth = 0
            while i < n:
                if toks[i].kind == _OP and toks[i].value == tok.value:
                    depth += 1
                elif toks[i].kind == _OP and toks[i].value == close:
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            i += 1
        elif tok.kind == _OP and tok.value == "[":
            i += 2 if i + 1 < n and toks[i + 1].value == "]" else 1
        else:
            break
    return i


def read_snapshot(text: str) -> Volatility:
    """The snapshot's sections (``[volatile]``, ``[other]``, ``[keywords]``) as a Volatility."""
    sections: dict[str, set[str]] = {"volatile": set(), "other": set(), "keywords": set()}
    current: set[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.get(line[1:-1])
            continue
        if current is not None:
            current.update(word.lower() for word in line.split())
    return Volatility(
        volatile=frozenset(sections["volatile"]),
        other=frozenset(sections["other"] - sections["volatile"]),
        keywords=frozenset(sections["keywords"]),
        origin="snapshot",
    )


_snapshot: Volatility | None = None


def snapshot_volatility() -> Volatility:
    """The snapshot shipped with the package (read once)."""
    global _snapshot
    if _snapshot is None:
        from importlib.resources import files

        _snapshot = read_snapshot(
            files(__package__ or "migration_guard").joinpath(SNAPSHOT).read_text("utf-8")
        )
    return _snapshot


def catalog_volatility(cursor: Any) -> Volatility:
    """What a live server's catalog says (a DB-API cursor of the database judged)."""
    cursor.execute(CATALOG_QUERY)
    volatile: set[str] = set()
    other: set[str] = set()
    for name, is_volatile in cursor.fetchall():
        (volatile if is_volatile else other).add(str(name).lower())
    cursor.execute(KEYWORDS_QUERY)
    keywords = {str(row[0]).lower() for row in cursor.fetchall()}
    return Volatility(frozenset(volatile), frozenset(other), frozenset(keywords), "pg_proc")


_live: contextvars.ContextVar[Callable[[], Volatility] | None] = contextvars.ContextVar(
    "migration_guard_volatility", default=None
)
_log = logging.getLogger(__name__)


@contextlib.contextmanager
def volatility_from(connection: Any) -> Iterator[None]:
    """Inside the block, :func:`volatility` reads ``connection``'s catalog (a Django
    connection to the database being judged), at the moment it is asked."""

    def read() -> Volatility:
        with connection.cursor() as cursor:
            return catalog_volatility(cursor)

    token = _live.set(read)
    try:
        yield
    finally:
        _live.reset(token)


def volatility() -> Volatility:
    """The live catalog inside :func:`volatility_from`, else the snapshot."""
    read = _live.get()
    if read is not None:
        try:
            return read()
        except Exception as exc:  # a broken connection: the snapshot still answers
            _log.debug("reading function volatility from the server failed: %s", exc)
    return snapshot_volatility()
