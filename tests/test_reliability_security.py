"""Security: SQL is never built by string formatting; secrets never reach output.

* Every SQL-executing call in ``src/migration_guard`` (``execute``,
  ``executemany``, ``query``, ``copy``, ``stream``, and ``psycopg.sql.SQL``
  itself) gets a literal or a ``psycopg.sql`` composition: an f-string, ``%``
  formatting, concatenation or ``str.format`` there (directly, or through a
  variable of the same function) fails this test. Names go through
  ``sql.Identifier``, values through parameters or ``sql.Literal``.
* The command, at ``-v 3``, with passwords in ``--database-url``,
  ``--stats-url`` and the project's ``DATABASE_URL`` (``--unapplied``), working
  or unreachable, prints no password to stdout or stderr nor writes one into
  any report file.
"""

from __future__ import annotations

import ast
import dataclasses
import socket
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from migration_guard.postgres.base import ConnectionInfo

from .reliability import CREATE_ITEM, Project, project_fixture, scratch_databases, url_of

SOURCE = Path(__file__).resolve().parent.parent / "src" / "migration_guard"

#: Calls that send their first argument to PostgreSQL as SQL text.
EXECUTING = frozenset({"execute", "executemany", "query", "copy", "stream"})


def _is_sql_composable(node: ast.AST) -> bool:
    """``sql.SQL(...)`` (or ``SQL(...)``): a psycopg composable, safe to ``.format``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == "SQL") or (
        isinstance(func, ast.Name) and func.id == "SQL"
    )


def _formatting(node: ast.AST) -> str | None:
    """How ``node`` builds text by formatting, or None."""
    if isinstance(node, ast.JoinedStr) and any(
        isinstance(part, ast.FormattedValue) for part in node.values
    ):
        return "an f-string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return "% formatting"
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add)
        and not (isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant))
    ):
        return "concatenation"
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and not _is_sql_composable(node.func.value)
    ):
        return "str.format"
    return None


def formatted_sql(source: str, filename: str = "<source>") -> list[str]:
    """Each SQL-executing call of ``source`` whose SQL text is built by formatting."""
    tree = ast.parse(source, filename)
    scopes: list[ast.AST] = [tree]
    scopes += [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found = set()
    for scope in scopes:
        assigned: dict[str, list[ast.AST]] = {}
        for node in ast.walk(scope):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(scope):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name not in EXECUTING and not _is_sql_composable(node):
                continue
            first = node.args[0]
            candidates = (
                [first, *assigned.get(first.id, [])] if isinstance(first, ast.Name) else [first]
            )
            for candidate in candidates:
                how = _formatting(candidate)
                if how:
                    found.add(
                        f"{filename}:{node.lineno}: SQL built with {how}: "
                        f"{ast.unparse(candidate)[:120]}"
                    )
    return sorted(found)


def test_no_sql_is_built_by_string_formatting():
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 50  # the whole package is scanned
    problems = []
    for path in files:
        problems += formatted_sql(path.read_text(encoding="utf-8"), str(path.relative_to(SOURCE)))
    assert problems == [], "\n".join(problems)


def test_the_check_catches_each_pattern():
    bad = textwrap.dedent(
        """
        def f(conn, cursor, name, value):
            conn.execute(f"DROP TABLE {name}")
            cursor.execute("SELECT * FROM %s" % name)
            conn.execute("LOCK TABLE " + name)
            conn.execute("ALTER TABLE {} ADD c int".format(name))
            conn.execute(sql.SQL(f"VACUUM {name}"))
            query = f"TRUNCATE {name}"
            conn.execute(query)
            stats.query("SELECT count(*) FROM " + name)
        """
    )
    good = textwrap.dedent(
        """
        QUERY = "SELECT 1"

        def f(conn, cursor, name, value):
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            cursor.execute("SELECT * FROM t WHERE a = %s", [value])
            conn.execute(QUERY)
            conn.execute("SELECT " "1")
            statement = sql.SQL("LOCK TABLE {}").format(sql.Identifier(name))
            conn.execute(statement)
            log.info(f"dropped {name}")
        """
    )
    flagged = sorted(int(line.split(":")[1]) for line in formatted_sql(bad))
    assert flagged == [3, 4, 5, 6, 7, 9, 10], formatted_sql(bad)  # every line but `query = ...`
    assert formatted_sql(good) == []


# --- secrets ---------------------------------------------------------------------------------

#: Percent-encoded in URLs; neither form may appear anywhere.
PASSWORDS = {
    "database": ("db-S3cr%40t-1", "db-S3cr@t-1"),
    "stats": ("stats-S3cr%2Ft-2", "stats-S3cr/t-2"),
    "project": ("app-S3cr%3At-3", "app-S3cr:t-3"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def test_no_password_reaches_any_output(project, pg_server, pg_url):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_index",
        ["migrations.AddIndex('item', models.Index(fields=['code'], name='item_code_ix'))"],
    )

    audit_role = dataclasses.replace(ConnectionInfo.from_url(pg_url), password=None)

    def with_password(which: str, info=audit_role) -> str:
        url = url_of(dataclasses.replace(info, password="PASSWORD"))
        return url.replace("PASSWORD", PASSWORDS[which][0])

    unreachable = f"127.0.0.1:{_free_port()}"
    working = {
        # the session server trusts local connections: the password is sent, and ignored
        "database-url": ["--database-url", with_password("database")],
        "stats-url": [
            "--stats-url",
            with_password("stats"),
            "--database-url",
            with_password("database"),
        ],
        "keyword form": [
            "--database-url",
            audit_role.conninfo() + " password=" + PASSWORDS["database"][1],
        ],
    }
    failing = {
        "unreachable database-url": [
            "--database-url",
            f"postgresql://someone:{PASSWORDS['database'][0]}@{unreachable}/db",
        ],
        "unreachable stats-url": [
            "--stats-url",
            f"postgresql://someone:{PASSWORDS['stats'][0]}@{unreachable}/db",
            "--database-url",
            with_password("database"),
        ],
        "unreachable DATABASE_URL (--unapplied)": [
            "--unapplied",
            "--database-url",
            with_password("database"),
        ],
    }
    project_url = f"postgresql://someone:{PASSWORDS['project'][0]}@{unreachable}/app"

    def run(case: str):
        args = working.get(case) or failing[case]
        outputs = [project.root / f"{case}.{fmt}" for fmt in ("json", "sarif", "md", "txt")]
        files = []
        if case in working:
            selection = ["inv", "0002"]
            for fmt, out in zip(("json", "sarif", "markdown", "text"), outputs, strict=True):
                files += ["--format", fmt, "--output", str(out)]
        else:
            selection = [] if "--unapplied" in args else ["inv", "0002"]
        result = project.run(*selection, *args, *files, "-v", "3", DATABASE_URL=project_url)
        return case, result, [p for p in outputs if p.exists()]

    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(run, [*working, *failing]))
    for case, result, files in runs:
        if case in working:
            assert result.returncode == 1, f"{case}: {result.output}"
            assert len(files) == 4, case
        else:
            assert result.returncode == 2, f"{case}: {result.output}"
            assert "Traceback" not in result.output, case
            where = "127.0.0.1" if "--unapplied" in case else "someone@127.0.0.1"
            assert where in result.stderr, f"{case}: {result.stderr}"
        texts = [result.stdout, result.stderr, *(p.read_text() for p in files)]
        for text in texts:
            for encoded, decoded in PASSWORDS.values():
                assert encoded not in text and decoded not in text, f"{case}: {text}"
        assert scratch_databases(pg_server.info, result.pid) == []
