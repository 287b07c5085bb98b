"""The scratch database: all work happens there, never in the project's own databases."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterator

import psycopg
from psycopg import sql

from ..exceptions import ScratchDatabaseError
from ..signals import shielded
from .base import ConnectionInfo, PostgresServer, redact

log = logging.getLogger(__name__)

#: Every scratch database name starts with this; nothing else is ever dropped.
PREFIX = "migration_guard_"


def new_name(purpose: str = "audit") -> str:
    """Unique per process and call, so concurrent audits on one server never meet."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    return f"{PREFIX}{purpose}_{stamp}_{os.getpid()}_{secrets.token_hex(3)}"


def create_database(server: PostgresServer, name: str, template: str | None = None) -> None:
    if not name.startswith(PREFIX):
        raise ScratchDatabaseError(f"refusing to create {name!r}: not a migration_guard name")
    query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template or "template0")
    )
    try:
        with server.info.connect(autocommit=True) as conn:
            conn.execute(query)
    except psycopg.Error as exc:
        hint = ""
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            hint = " The role needs CREATEDB (ALTER ROLE ... CREATEDB) or use another source."
        raise ScratchDatabaseError(
            f"cannot create the scratch database {name} on {server.description}: "
            f"{redact(str(exc)).strip()}.{hint}"
        ) from exc


def drop_database(server: PostgresServer, name: str) -> None:
    """Drop one of our databases, disconnecting whoever still uses it."""
    if not name.startswith(PREFIX):
        raise ScratchDatabaseError(f"refusing to drop {name!r}: not a migration_guard database")
    with server.info.connect(autocommit=True) as conn:
        if conn.info.server_version >= 130000:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            return
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def scratch_database(
    server: PostgresServer, *, keep: bool = False, purpose: str = "audit"
) -> Iterator[ConnectionInfo]:
    """Create a uniquely named database on ``server``; drop it afterwards unless ``keep``."""
    name = new_name(purpose)
    with shielded():
        create_database(server, name)
    log.debug("created scratch database %s", name)
    try:
        yield server.info.with_dbname(name)
    finally:
        if keep:
            log.warning("kept scratch database %s on %s", name, server.description)
        else:
            with shielded():
                try:
                    drop_database(server, name)
                except psycopg.Error as exc:
                    # on a throwaway cluster the database goes with the cluster anyway
                    throwaway = server.source in ("local", "embedded")
                    log.log(
                        logging.DEBUG if throwaway else logging.WARNING,
                        "could not drop scratch database %s: %s",
                        name,
                        redact(str(exc)),
                    )
