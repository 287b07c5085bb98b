"""A statement that reaches outside the migration's own database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord

#: Functions that read, list or write files of the server, or open connections elsewhere.
SERVER_FUNCTIONS = {
    "lo_import": "reads a file of the server into the database",
    "lo_export": "writes a file on the server",
    "pg_read_file": "reads a file of the server",
    "pg_read_binary_file": "reads a file of the server",
    "pg_stat_file": "reads a file's details on the server",
    "pg_ls_dir": "lists a folder of the server",
    "pg_ls_logdir": "lists a folder of the server",
    "pg_ls_waldir": "lists a folder of the server",
    "pg_ls_tmpdir": "lists a folder of the server",
    "pg_ls_archive_statusdir": "lists a folder of the server",
    "pg_ls_logicalsnapdir": "lists a folder of the server",
    "pg_ls_logicalmapdir": "lists a folder of the server",
    "pg_ls_replslotdir": "lists a folder of the server",
    "pg_logdir_ls": "lists a folder of the server",
    "pg_file_write": "writes a file on the server",
    "pg_file_rename": "renames a file on the server",
    "pg_file_unlink": "deletes a file on the server",
    "pg_file_sync": "touches a file on the server",
}
#: Extensions whose only purpose is to reach other servers or the server's files.
REACHING_EXTENSIONS = {"dblink", "postgres_fdw", "file_fdw", "adminpack"}
_ROLE_WORDS = {"ROLE", "USER", "GROUP"}
#: How deep function bodies and EXECUTE strings inside them are read.
_MAX_DEPTH = 3


def reaching(sql: str, depth: int = 0) -> Iterator[str]:
    """What each part of ``sql`` that reaches outside its database does, in words.

    Function bodies and ``DO`` blocks are read too (and the strings they
    ``EXECUTE``), a few levels deep.
    """
    for statement in sqlfacts.split(sql):
        yield from _statement(sqlfacts.tokens(statement), depth)


def _statement(toks: list[tuple[str, str]], depth: int) -> Iterator[str]:
    words = [value.upper() if kind == "ident" else "" for kind, value in toks]
    first, second, third = [*words, "", "", ""][:3]
    if first == "ALTER" and second == "SYSTEM":
        yield "ALTER SYSTEM changes the whole server's configuration"
    elif first in ("CREATE", "ALTER", "DROP") and second in _ROLE_WORDS and third != "MAPPING":
        yield f"{first} {second} changes the server's roles, shared by every database"
    elif first in ("GRANT", "REVOKE") and "ON" not in words:
        yield f"{first} of a role membership changes the server's roles"
    elif first in ("CREATE", "DROP") and second == "DATABASE":
        yield f"{first} DATABASE acts on another database of the server"
    elif first in ("CREATE", "DROP", "ALTER") and second == "TABLESPACE":
        yield f"{first} TABLESPACE acts on a folder of the server"
    elif first == "LOAD":
        yield "LOAD loads a shared library into the server"
    elif first == "COPY":
        yield from _copy(toks, words)
    elif first in ("CREATE", "ALTER") and _foreign(words):
        yield f"{first} {_foreign(words)} reaches another server"
    elif first == "IMPORT" and second == "FOREIGN":
        yield "IMPORT FOREIGN SCHEMA reaches another server"
    elif first == "CREATE" and "EXTENSION" in words[:2]:
        name = next(
            (
                value.strip('"').lower()
                for (kind, value), word in zip(toks[2:], words[2:], strict=True)
                if kind in ("ident", "qident") and word not in ("IF", "NOT", "EXISTS")
            ),
            "",
        )
        if name in REACHING_EXTENSIONS:
            yield f"CREATE EXTENSION {name} brings functions that reach outside the database"
    for index, (kind, value) in enumerate(toks):
        name = value.lower() if kind == "ident" else ""
        called = index + 1 < len(toks) and toks[index + 1] == ("op", "(")
        if called and name in SERVER_FUNCTIONS:
            yield f"{name}() {SERVER_FUNCTIONS[name]}"
        elif called and name.startswith("dblink"):
            yield f"{name}() opens a connection to another server"
    body = first == "DO" or (first == "CREATE" and bool({"FUNCTION", "PROCEDURE"} & set(words)))
    if (body or depth) and depth < _MAX_DEPTH:
        for kind, value in toks:
            if kind in ("dollar", "string"):
                yield from reaching(_body(kind, value), depth + 1)


def _foreign(words: list[str]) -> str | None:
    """``SERVER``, ``USER MAPPING``, ``FOREIGN DATA WRAPPER`` or ``FOREIGN TABLE``, or None."""
    head = [w for w in words[1:5] if w and w not in ("OR", "REPLACE")]
    if head[:1] == ["SERVER"]:
        return "SERVER"
    for phrase in (["USER", "MAPPING"], ["FOREIGN", "DATA", "WRAPPER"], ["FOREIGN", "TABLE"]):
        if head[: len(phrase)] == phrase:
            return " ".join(phrase)
    return None


def _copy(toks: list[tuple[str, str]], words: list[str]) -> Iterator[str]:
    depth = 0
    for index, (kind, value) in enumerate(toks):
        if kind == "op":
            depth += value.count("(") - value.count(")")
            continue
        if depth or words[index] not in ("TO", "FROM") or index + 1 >= len(toks):
            continue
        direction = words[index]
        following = toks[index + 1]
        if words[index + 1] == "PROGRAM":
            yield f"COPY ... {direction} PROGRAM runs a command on the server"
        elif following[0] == "string":
            where = "writes" if direction == "TO" else "reads"
            yield f"COPY ... {direction} '<file>' {where} a file of the server"
        return


def _body(kind: str, value: str) -> str:
    if kind == "dollar":
        tag_end = value.find("$", 1) + 1
        return value[tag_end : len(value) - tag_end] if tag_end else value
    text = value[1:-1] if value.endswith("'") else value[1:]
    if value[:1] in "eE":
        text = value[2:-1]
    return text.replace("''", "'")


class ReachesOutsideDatabase(Rule):
    """A migration statement reaches outside the migration's own database.

    **What it flags.** SQL in a migration (``RunSQL``, SQL that ``RunPython``
    code runs, and the bodies of functions and ``DO`` blocks it creates) that
    acts on the server rather than on the migration's database:

    * ``ALTER SYSTEM``;
    * ``COPY ... TO/FROM PROGRAM`` (a shell command on the server) and
      ``COPY ... TO/FROM 'file'`` (a file of the server);
    * ``CREATE/ALTER/DROP ROLE`` (or ``USER``, ``GROUP``) and ``GRANT``/``REVOKE``
      of role memberships;
    * ``CREATE/DROP DATABASE`` and ``TABLESPACE``;
    * ``lo_import``/``lo_export``, ``pg_read_file`` and the other functions that
      read, list or write the server's files;
    * ``dblink`` functions, foreign servers, foreign data wrappers, user
      mappings, foreign tables and ``IMPORT FOREIGN SCHEMA``, and ``CREATE
      EXTENSION`` of dblink, postgres_fdw, file_fdw or adminpack;
    * ``LOAD`` of a shared library.

    **Why.** A migration changes its own database's schema and data. These
    statements change or read everything else: other databases, the roles
    every database shares, the server's configuration and files, other
    servers. In production they run with the deploy role's rights, and the
    audit runs them too: on a throwaway server they are contained, on a
    server given by ``--database-url`` they run with that role's rights (see
    docs/security.md). A merge request that brings one should get a security
    review, whatever else it does. Code that builds the statement at run time
    (``EXECUTE 'CO' || 'PY ...'``) escapes any static check: the containment
    of the audit, not this rule, is what protects the audit itself.

    **Safe alternative.** Do server administration outside migrations, by the
    people who run the server: roles and grants in infrastructure code,
    configuration in ``postgresql.conf`` or the provider's console, data
    loaded from files with ``\\copy`` from a client, other databases reached
    by the application. When one really must ship with a deploy, turn this
    rule off for that migration with ``migration_guard_ignore`` after review.

    **References.** PostgreSQL, "COPY":
    https://www.postgresql.org/docs/current/sql-copy.html ; "ALTER SYSTEM":
    https://www.postgresql.org/docs/current/sql-altersystem.html ; "Predefined
    Roles": https://www.postgresql.org/docs/current/predefined-roles.html ;
    docs/security.md of this project.
    """

    id = "reaches-outside-database"
    severity = Severity.ERROR
    category = Category.SECURITY
    only_existing_tables = False

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        seen: set[tuple[str, str]] = set()
        for stmt in _locks.executed(op, orm=True):
            for what in dict.fromkeys(reaching(stmt.sql)):
                if (what, stmt.sql) in seen:
                    continue
                seen.add((what, stmt.sql))
                yield ctx.finding(
                    self,
                    op,
                    f"{what}: this reaches outside the migration's own database, and runs "
                    "with the rights of whoever applies the migration (the deploy role in "
                    "production).",
                    "Move server administration out of migrations (roles, configuration, "
                    "files and other databases belong to whoever runs the server); if this "
                    "must ship with the deploy, have it reviewed and ignore this rule for "
                    "this migration.",
                    sql=[stmt.sql],
                )
