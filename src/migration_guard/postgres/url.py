"""An existing server given by URL: ``--database-url`` or ``MIGRATION_GUARD_DATABASE_URL``.

Nothing is started or stopped; all work happens in a scratch database that is
created on it and dropped afterwards. The role needs CREATEDB.

The audited migrations run there with the rights of the URL's role: a
superuser, a role with CREATEROLE, or a member of ``pg_execute_server_program``,
``pg_write_server_files`` or ``pg_read_server_files`` would let a merge
request's migration reach outside its scratch database (drop other databases,
create roles, run programs or read and write files on the server). Such a role
is refused unless the user allows it (``--allow-privileged-role``); the rights
are part of the server's description, printed when the audit starts.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from typing import Any

import psycopg

from ..exceptions import ConfigurationError, ProviderError
from .base import ConnectionInfo, redact, version_text

log = logging.getLogger(__name__)

ENV_VAR = "MIGRATION_GUARD_DATABASE_URL"
#: Predefined roles whose members reach outside the database (programs, server files).
SERVER_ACCESS_ROLES = ("pg_execute_server_program", "pg_write_server_files", "pg_read_server_files")
ALLOW_OPTION = "--allow-privileged-role"

_SCHEME = re.compile(r"^\s*(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.S)
_KEYWORD = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")
_SHOWN = ("user", "host", "port", "dbname")


def url_from_environment() -> str | None:
    return os.environ.get(ENV_VAR) or None


def describe_url(url: str) -> str:
    """Scheme, user, host, port and database of ``url``, never anything else.

    The parse is tolerant (it never fails, whatever the text) so that a message
    about a malformed URL can still say which server was meant; the password,
    the query's other parameters and anything unparsable are left out.
    """
    parts = _tolerant_parts(url)
    user = parts.get("user", "")
    host = parts.get("host", "")
    port = parts.get("port", "")
    where = host + (f":{port}" if port and not host.startswith("/") else "")
    if port and host.startswith("/"):
        where += f" (port {port})"
    text = f"{user}@{where}" if user else where
    text += f"/{parts['dbname']}" if parts.get("dbname") else ""
    scheme = parts.get("scheme")
    return (f"{scheme}://" if scheme else "") + (text or "(no host)")


def _clean(value: str) -> str:
    value = urllib.parse.unquote(value.strip().strip("'"))
    return "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in value)[:100]


def _tolerant_parts(url: str) -> dict[str, str]:
    out: dict[str, str] = {}
    match = _SCHEME.match(url)
    if match is None:  # libpq keyword=value form
        for key, value in _KEYWORD.findall(url):
            if key in _SHOWN:
                out[key] = _clean(value)
        return out
    out["scheme"] = _clean(match.group("scheme"))
    rest = match.group("rest")
    rest, _, query = rest.partition("?")
    at = rest.rfind("@")
    userinfo, hostpart = (rest[:at], rest[at + 1 :]) if at >= 0 else ("", rest)
    if userinfo:
        out["user"] = _clean(userinfo.split(":", 1)[0])
    hostport, _, path = hostpart.partition("/")
    host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if host:
        out["host"] = _clean(host)
    if port.strip().isdigit():
        out["port"] = port.strip()
    if path:
        out["dbname"] = _clean(path)
    for key, values in urllib.parse.parse_qs(query, keep_blank_values=True).items():
        if key in _SHOWN and values:
            out[key] = _clean(values[0])
    return out


def url_problem(url: str) -> str | None:
    """Why ``url`` would be read other than meant (without quoting any of it), or None."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = match.group("rest").strip().partition("?")[0]
    if any(ch.isspace() or not ch.isprintable() for ch in match.group("rest").strip()):
        return "it contains a space or a control character"
    at = rest.rfind("@")
    if at >= 0 and ("@" in rest[:at] or "/" in rest[:at]):
        return "an @ or / in the user name, password or database name is not percent-encoded"
    return None


def invalid_url(url: str, origin: str, problem: str) -> ConfigurationError:
    """The error for a malformed URL: what is wrong and which server, never the URL."""
    return ConfigurationError(
        f"{origin} is not a valid PostgreSQL URL ({problem}): {describe_url(url)}. Expected "
        "postgresql://user:password@host:port/dbname, with special characters in the user "
        "name and password percent-encoded (@ as %40, : as %3A, / as %2F, space as %20)."
    )


def parse_url(url: str, *, origin: str = "--database-url") -> ConnectionInfo:
    """Parse a URL, naming where it came from when it is malformed (without its secret).

    Neither the URL nor libpq's message about it is ever quoted: both can hold
    the password, or its tail when an ``@`` in it is not encoded.
    """
    if not url.strip():
        raise ConfigurationError(f"{origin} is empty; give a URL like postgresql://user@host/db")
    problem = url_problem(url)
    if problem is None:
        try:
            return ConnectionInfo.from_url(url.strip())
        except (psycopg.ProgrammingError, ValueError):
            problem = "libpq cannot read it"
    raise invalid_url(url, origin, problem) from None


_RIGHTS_QUERY = """
SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb,
       ARRAY(SELECT g.rolname::text FROM pg_roles g
             WHERE g.rolname = ANY(%s) AND pg_has_role(r.oid, g.oid, 'MEMBER')
             ORDER BY 1)
FROM pg_roles r WHERE r.rolname = current_user
"""


def role_rights(conn: psycopg.Connection[Any]) -> tuple[str, list[str], list[str]]:
    """The current role's name, its dangerous rights, and all the rights worth naming."""
    row = conn.execute(_RIGHTS_QUERY, (list(SERVER_ACCESS_ROLES),)).fetchone()
    if row is None:  # pragma: no cover - the current role always exists
        return "?", [], []
    name, superuser, createrole, createdb, memberships = row
    dangerous = []
    if superuser:
        dangerous.append("SUPERUSER")
    if createrole:
        dangerous.append("CREATEROLE")
    if not superuser:
        dangerous += [f"member of {m}" for m in memberships]
    return str(name), dangerous, dangerous + (["CREATEDB"] if createdb else [])


class PrivilegedRole(ProviderError):
    """The --database-url role could reach outside its database, and that was not allowed."""


class UrlServer:
    """A server that runs elsewhere; entering checks that it answers and who we are there."""

    source = "url"

    def __init__(
        self, url: str, *, origin: str = "--database-url", allow_privileged_role: bool = False
    ) -> None:
        self._info = parse_url(url, origin=origin)
        self._origin = origin
        self._allow_privileged = allow_privileged_role
        self._version: int | None = None
        self.role: str | None = None
        #: Rights of the role worth naming (SUPERUSER, CREATEROLE, memberships, CREATEDB).
        self.rights: list[str] = []

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    @property
    def server_version(self) -> int:
        if self._version is None:
            raise ProviderError("the server has not been contacted yet; use it in a `with` block")
        return self._version

    @property
    def description(self) -> str:
        version = version_text(self._version) if self._version else "?"
        rights = ""
        if self.role is not None:
            rights = (
                f"; the audited migrations run as role {self.role}"
                f" with {', '.join(self.rights) or 'no special rights'}"
            )
        return f"PostgreSQL {version} (url: {self._info.redacted()}{rights})"

    def __enter__(self) -> UrlServer:
        try:
            with self._info.connect() as conn:
                self._version = int(conn.info.server_version)
                self.role, dangerous, self.rights = role_rights(conn)
        except psycopg.Error as exc:
            raise ProviderError(
                f"cannot connect to the server from {self._origin} ({self._info.redacted()}): "
                f"{redact(str(exc)).strip()}. Check that it runs and that the URL is right."
            ) from exc
        if dangerous and not self._allow_privileged:
            raise PrivilegedRole(
                f"{self._origin} connects as role {self.role}, which has "
                f"{', '.join(dangerous)}: the audited migrations would run with these rights "
                f"on {self._info.redacted()} and could reach outside their scratch database "
                "(drop other databases, create roles, run programs or read and write files on "
                "the server). Give the audit a role with CREATEDB and nothing more (CREATE ROLE "
                f"migration_audit LOGIN CREATEDB PASSWORD '...'), or pass {ALLOW_OPTION} "
                "(setting allow_privileged_role) to accept this."
            )
        if dangerous:
            log.warning(
                "the audited migrations run as role %s with %s on %s (%s)",
                self.role,
                ", ".join(dangerous),
                self._info.redacted(),
                ALLOW_OPTION,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        return None
