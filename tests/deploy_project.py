"""A throwaway project whose ``manage.py migrate`` the deploy-guard tests run for real.

Each test gets its own database on the session's PostgreSQL and a project
folder with one app, ``inv``, whose migrations the test writes. ``migrate``
runs in a subprocess, as in a deploy, with ``PGAPPNAME=deploy-under-test`` so
that its backend is easy to find; a :class:`Holder` is the second connection
that holds the conflicting locks (``application_name`` ``reports-worker``).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from migration_guard.postgres.base import ConnectionInfo

from .reliability import CREATE_ITEM, MIGRATION, Result, url_of

MIGRATE_APP = "deploy-under-test"
HOLDER_APP = "reports-worker"

SETTINGS = '''\
"""Settings of a throwaway project for the deploy guard tests."""

import os
from urllib.parse import parse_qs, unquote, urlsplit

SECRET_KEY = "deploy-tests-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = {apps!r}

_url = urlsplit(os.environ["DATABASE_URL"])
_query = parse_qs(_url.query)
DATABASES = {{
    "default": {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(_url.path.lstrip("/")),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": unquote(_url.hostname or "") or _query.get("host", [""])[0],
        "PORT": str(_url.port or _query.get("port", [""])[0]),
    }}
}}
MIGRATION_GUARD = {guard}
'''

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

#: An IMMUTABLE function that sleeps: an index on it builds slowly on any table.
SLOW_FUNCTION = """
CREATE FUNCTION slow_id(x bigint) RETURNS bigint IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.02); RETURN x; END $$
"""


def create_database(server: ConnectionInfo, template: str | None = None) -> ConnectionInfo:
    """A new database on ``server`` (a copy of ``template`` when given)."""
    name = f"deploy_{uuid.uuid4().hex[:12]}"
    statement = psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
    if template:
        statement += psycopg.sql.SQL(" TEMPLATE {}").format(psycopg.sql.Identifier(template))
    with psycopg.connect(**server.kwargs(), autocommit=True) as conn:
        conn.execute(statement)
    return server.with_dbname(name)


def drop_database(server: ConnectionInfo, info: ConnectionInfo) -> None:
    with psycopg.connect(**server.kwargs(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [info.dbname],
        )
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(
                psycopg.sql.Identifier(info.dbname)
            )
        )


class Running:
    """A ``migrate`` subprocess whose stderr lines arrive as they are written."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.child = child
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stdout: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        assert self.child.stderr is not None
        for line in self.child.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def _read_out(self) -> None:
        assert self.child.stdout is not None
        self._stdout.append(self.child.stdout.read())

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """The first stderr line containing ``text`` (waiting for it to be written)."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if text in line:
                return line
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} in:\n{''.join(self.lines)}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)
                raise AssertionError(
                    f"migrate ended before a line with {text!r}:\n{''.join(self.lines)}"
                )
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 120) -> Result:
        try:
            self.child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
            raise AssertionError(f"migrate hung:\n{''.join(self.lines)}") from None
        self._reader.join(timeout=10)
        self._out_reader.join(timeout=10)
        while True:
            line = self._queue.get()
            if line is None:
                break
            self.lines.append(line)
        return Result(
            self.child.returncode, "".join(self._stdout), "".join(self.lines), self.child.pid
        )


class DeployProject:
    """A project folder with the app ``inv``, migrated into its own database."""

    def __init__(
        self,
        root: Path,
        info: ConnectionInfo,
        *,
        guard: dict[str, Any] | None = None,
        apps: Sequence[str] = ("migration_guard", "inv"),
    ) -> None:
        self.root = root
        self.info = info
        root.mkdir(parents=True, exist_ok=True)
        self.write_settings(guard or {}, apps=apps)
        (root / "manage.py").write_text(MANAGE)
        folder = root / "inv" / "migrations"
        folder.mkdir(parents=True, exist_ok=True)
        (root / "inv" / "__init__.py").write_text("")
        (root / "inv" / "models.py").write_text("")
        (folder / "__init__.py").write_text("")

    def write_settings(
        self, guard: dict[str, Any], *, apps: Sequence[str] = ("migration_guard", "inv")
    ) -> None:
        (self.root / "settings.py").write_text(SETTINGS.format(apps=list(apps), guard=repr(guard)))

    def migration(
        self, name: str, operations: Sequence[str], *, atomic: bool = True, imports: str = ""
    ) -> Path:
        """Write ``inv/migrations/<name>.py``, depending on the one before it."""
        folder = self.root / "inv" / "migrations"
        before = sorted(p.stem for p in folder.glob("[0-9]*.py") if p.stem < name)
        ops = "\n".join(
            textwrap.indent(textwrap.dedent(op).strip(), " " * 8) + "," for op in operations
        )
        text = MIGRATION.format(
            attributes="    atomic = False\n" if not atomic else "    pass",
            dependencies=[("inv", b) for b in before[-1:]],
            operations=ops,
        ).replace("\n    pass\n    dependencies", "\n    dependencies")
        if imports:
            text = imports.rstrip() + "\n" + text
        path = folder / f"{name}.py"
        path.write_text(text)
        return path

    def item_table(self) -> None:
        """0001: the table ``inv_item`` (id, code), migrated with no one in the way."""
        self.migration("0001_initial", [CREATE_ITEM])
        result = self.migrate("inv", "0001")
        assert result.returncode == 0, result.output

    def env(self, **extra: str) -> dict[str, str]:
        environ = {**os.environ}
        for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "MIGRATION_GUARD_DATABASE_URL"):
            environ.pop(key, None)
        environ.update(
            DATABASE_URL=url_of(self.info), PGAPPNAME=MIGRATE_APP, PYTHONDONTWRITEBYTECODE="1"
        )
        environ.update(extra)
        return environ

    def start(self, *args: str, command: str = "migrate") -> Running:
        child = subprocess.Popen(
            [sys.executable, "manage.py", command, *args],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return Running(child)

    def migrate(self, *args: str, timeout: float = 120) -> Result:
        return self.start(*args).finish(timeout)

    # -- reading the database ---------------------------------------------------------
    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(**self.info.kwargs(), autocommit=True, **kwargs)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return list(conn.execute(sql, params).fetchall())

    def applied(self) -> list[str]:
        return [
            name
            for (name,) in self.query(
                "SELECT name FROM django_migrations WHERE app = 'inv' ORDER BY id"
            )
        ]

    def columns(self, table: str = "inv_item") -> list[str]:
        return [
            name
            for (name,) in self.query(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                [table],
            )
        ]

    def table_exists(self, table: str) -> bool:
        return self.query("SELECT to_regclass(%s) IS NOT NULL", [table])[0][0]

    def indexes(self, table: str = "inv_item") -> dict[str, bool]:
        """Index name -> valid, of ``table``."""
        return {
            str(name): bool(valid)
            for name, valid in self.query(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(%s)",
                [table],
            )
        }

    def migrate_backend(self) -> list[tuple[Any, ...]]:
        """(pid, state) of the migrate process's backends."""
        return self.query(
            "SELECT pid, state FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            [MIGRATE_APP, self.info.dbname],
        )

    def locks_of(self, pid: int) -> list[tuple[Any, ...]]:
        """Relation locks ``pid`` holds or waits for: (relation, mode, granted)."""
        return self.query(
            "SELECT relation::regclass::text, mode, granted FROM pg_locks "
            "WHERE pid = %s AND locktype = 'relation'",
            [pid],
        )


class Holder:
    """A second connection (``reports-worker``) holding locks in an open transaction."""

    def __init__(self, project: DeployProject, application_name: str = HOLDER_APP) -> None:
        self.conn = psycopg.connect(**project.info.kwargs(), application_name=application_name)
        self.pid = self.conn.info.backend_pid
        self.opened_at: float | None = None

    def run(self, sql: str) -> None:
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        self.conn.execute(sql)

    def commit(self) -> None:
        self.conn.commit()
        self.opened_at = None

    def close(self) -> None:
        self.conn.close()
