"""Point Django's connections at the scratch database, and back.

While the audit runs, every alias in ``DATABASES`` points at the scratch
database: each keeps its PostgreSQL engine (PostGIS and other PostgreSQL
backends included) so routers and backend features behave as in production.
The audited alias (``--database``) is the one migrations are applied through,
so the project's routers decide, operation by operation, what runs on it, as
``manage.py migrate --database ALIAS`` would; any other alias a migration's
code uses lands in the same scratch database. The project's own databases are
never connected to, and need not exist.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
from collections.abc import Iterator
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend

from .exceptions import ConfigurationError
from .postgres.base import ConnectionInfo

POSTGRES_ENGINE = "django.db.backends.postgresql"

#: Connection settings of the scratch server: nothing should wait forever
#: there (a lock wait means the migration waits on itself).
SCRATCH_SESSION_OPTIONS = "-c lock_timeout=60s -c idle_in_transaction_session_timeout=0"
#: Overrides the scratch connection's ``lock_timeout`` (e.g. ``5s``, ``500ms``).
LOCK_TIMEOUT_ENV = "MIGRATION_GUARD_SCRATCH_LOCK_TIMEOUT"
_DURATION = re.compile(r"\d+(?:us|ms|s|min|h|d)?")


def scratch_session_options() -> str:
    """``SCRATCH_SESSION_OPTIONS``, with the lock_timeout of ``LOCK_TIMEOUT_ENV`` if set."""
    value = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not value:
        return SCRATCH_SESSION_OPTIONS
    if not _DURATION.fullmatch(value):
        raise ConfigurationError(
            f"{LOCK_TIMEOUT_ENV} must be a PostgreSQL duration such as 60s or 500ms, got {value!r}"
        )
    return SCRATCH_SESSION_OPTIONS.replace("lock_timeout=60s", f"lock_timeout={value}")


def engine_for(alias_settings: dict[str, Any]) -> str:
    """The user's ENGINE when it is a PostgreSQL backend, else Django's own."""
    engine = alias_settings.get("ENGINE") or ""
    if not engine or engine == POSTGRES_ENGINE:
        return POSTGRES_ENGINE
    try:
        vendor = load_backend(engine).DatabaseWrapper.vendor
    except Exception:  # an engine that does not import: not PostgreSQL anyway
        return POSTGRES_ENGINE
    return engine if vendor == "postgresql" else POSTGRES_ENGINE


#: The project's own DATABASES entries while :func:`connections_pointed_at` redirects
#: them (outermost first): what production runs with, never the scratch settings.
_PROJECT_SETTINGS: list[dict[str, Any]] = []


def original_settings(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """A copy of the project's settings for ``alias`` (before any redirection)."""
    current = _PROJECT_SETTINGS[0] if _PROJECT_SETTINGS else connections.settings
    if alias not in current:
        known = ", ".join(sorted(current)) or "none"
        raise ConfigurationError(
            f"--database {alias!r} is not in settings.DATABASES (known aliases: {known})"
        )
    return copy.deepcopy(dict(current[alias]))


@contextlib.contextmanager
def connections_pointed_at(info: ConnectionInfo, alias: str = DEFAULT_DB_ALIAS) -> Iterator[Any]:
    """Every alias uses the scratch database inside the block; yields ``connections[alias]``."""
    saved = {name: connections.settings[name] for name in list(connections.settings)}
    if alias not in saved:
        original_settings(alias)  # raises the precise error
    _PROJECT_SETTINGS.append(saved)
    try:
        raw: dict[str, dict[str, Any]] = {}
        for name, conf in saved.items():
            _drop_connection(name)
            options = {"options": scratch_session_options()}
            options.update(info.django_settings()["OPTIONS"])
            raw[name] = {
                **{k: v for k, v in conf.items() if k in ("TIME_ZONE", "TEST")},
                **info.django_settings(),
                "ENGINE": engine_for(conf),
                "OPTIONS": options,
                "ATOMIC_REQUESTS": False,
                "AUTOCOMMIT": True,
                "CONN_MAX_AGE": 0,
            }
        # All aliases at once: Django checks the whole mapping (it must hold "default").
        configured = connections.configure_settings(raw)
        for name in saved:
            connections.settings[name] = configured[name]
        yield connections[alias]
    finally:
        _PROJECT_SETTINGS.pop()
        for name, conf in saved.items():
            _drop_connection(name)
            connections.settings[name] = conf


def cancel_query(wrapper: Any) -> None:
    """Cancel the query a Django connection is running (safe from another thread)."""
    raw = getattr(wrapper, "connection", None)
    if raw is None:
        return
    cancel = getattr(raw, "cancel_safe", None) or getattr(raw, "cancel", None)
    if cancel is not None:
        with contextlib.suppress(Exception):
            cancel()


def _drop_connection(name: str) -> None:
    """Close and forget the connection object of ``name`` (without opening one)."""
    conn = getattr(connections._connections, name, None)  # type: ignore[attr-defined]
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()
    with contextlib.suppress(AttributeError, KeyError):
        del connections[name]
