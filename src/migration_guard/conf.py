"""One settings object, built once from every place a team can configure us.

Precedence, lowest first: built-in defaults, ``[tool.migration_guard]`` in the
project's ``pyproject.toml``, ``MIGRATION_GUARD`` in Django settings, then the
command line. Every bad value is named precisely: which key, in which place,
what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .deploy.schedule import BACKOFFS, DURATION_RE, duration_ms
from .exceptions import ConfigurationError
from .findings import Severity

#: Where PostgreSQL comes from (``--postgres``), in the order ``auto`` tries them.
SOURCES = ("url", "local", "embedded", "docker")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

#: Rule severity value that turns a rule off.
OFF = "off"
_DURATION = DURATION_RE


@dataclasses.dataclass(frozen=True)
class Config:
    # where Postgres comes from
    postgres: str = "auto"
    database_url: str | None = None
    postgres_bindir: str | None = None
    postgres_image: str | None = None
    #: Production's major version (e.g. 16). Version-dependent facts follow it.
    postgres_version: int | None = None
    #: Accept a database_url role that can reach outside its database (superuser...).
    allow_privileged_role: bool = False
    # what the audit reports
    fail_on: Severity = Severity.ERROR
    #: rule id -> severity, or None when the rule is turned off.
    rules: Mapping[str, Severity | None] = dataclasses.field(default_factory=dict)
    exclude_apps: tuple[str, ...] = ()
    #: ``app_label.migration_name`` or ``app_label.*`` (fnmatch patterns).
    exclude_migrations: tuple[str, ...] = ()
    #: Git ref the change is compared with when no selection is given.
    base_ref: str | None = None
    include_third_party: bool = False
    #: ``lock_timeout`` migration_guard sets for ``manage.py migrate`` (e.g. "5s"): the
    #: longest any lock request of a deploy may queue (docs/deploy.md).
    lock_timeout: str | None = None
    # deploy guard: `manage.py migrate` (docs/deploy.md)
    #: How often a migration (atomic) or a statement (non-atomic) is retried after a lock timeout.
    lock_retries: int = 5
    #: "exponential", "linear", "constant", or the pauses themselves ("1s", "5s", ...).
    lock_retry_backoff: str | tuple[str, ...] = "exponential"
    statement_timeout: str | None = None
    #: PostgreSQL 17+ only; below that it is reported and not set.
    transaction_timeout: str | None = None
    #: One log line per blocking backend on every lock timeout.
    blocker_report: bool = True
    #: Before a statement that blocks reads or writes on a table, transactions older than
    #: this holding conflicting locks on it count as a lock timeout (no queueing).
    preflight_transaction_age: str | None = None
    # tracing
    trace: bool = True
    stats_url: str | None = None
    seed_rows: int = 0
    cache: bool = True
    cache_dir: str | None = None
    #: Seconds a migration may run before it is stopped (0: no limit).
    migration_timeout: float = 600.0
    # rehearsal (--rehearse): the previous release's traffic during each migration
    rehearse: bool = False
    #: Rows seeded per touched table (the ceiling when --stats-url gives sizes); an
    #: explicit seed_rows wins.
    rehearse_rows: int = 10_000
    rehearse_connections: int = 4
    #: Queries per second per connection.
    rehearse_rate: float = 25.0
    #: A query that takes this long or longer (seconds) counts as blocked.
    rehearse_threshold: float = 1.0
    #: Seconds one read transaction per table is held as each migration starts (0: none).
    rehearse_long_read: float = 0.0
    # planner
    batch_size: int = 1000

    def severity_for(self, rule_id: str, default: Severity) -> Severity | None:
        """The severity a rule reports at, or None when it is turned off."""
        if rule_id in self.rules:
            return self.rules[rule_id]
        return default

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_DURATION_KEYS = frozenset(
    {"lock_timeout", "statement_timeout", "transaction_timeout", "preflight_transaction_age"}
)


def _expect(cond: bool, where: str, key: str, what: str, value: Any) -> None:
    if not cond:
        raise ConfigurationError(f"{where}: {key} must be {what}, got {value!r}")


def _convert(key: str, value: Any, where: str) -> Any:
    """Check one raw value and convert it to the type :class:`Config` holds."""
    if key == "postgres":
        _expect(
            isinstance(value, str) and value in ("auto", *SOURCES),
            where,
            key,
            f"one of auto, {', '.join(SOURCES)}",
            value,
        )
        return value
    if key == "fail_on":
        return Severity.parse(value, where=f"{where}: fail_on")
    if key == "postgres_version":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        _expect(
            isinstance(value, int) and not isinstance(value, bool) and 9 <= value < 100,
            where,
            key,
            "a PostgreSQL major version such as 16",
            value,
        )
        return value
    if key in ("rehearse_rows", "rehearse_connections"):
        _expect(
            isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            where,
            key,
            "a whole number >= 1",
            value,
        )
        _expect(key != "rehearse_connections" or value <= 32, where, key, "at most 32", value)
        return value
    if key == "rehearse_rate":
        _expect(
            isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1000,
            where,
            key,
            "queries per second per connection, more than 0 and at most 1000",
            value,
        )
        return float(value)
    if key in ("rehearse_threshold", "rehearse_long_read"):
        seconds = _seconds(value, where, key)
        if key == "rehearse_threshold":
            _expect(seconds > 0, where, key, 'a duration more than 0 such as "1s"', value)
        else:
            # the scratch connection's lock_timeout is 60s: the migration must outlast it
            _expect(seconds <= 50, where, key, 'at most "50s"', value)
        return seconds
    if key in ("seed_rows", "batch_size", "lock_retries"):
        _expect(
            isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            where,
            key,
            "a whole number >= 0",
            value,
        )
        if key == "batch_size":
            _expect(value > 0, where, key, "a whole number > 0", value)
        return value
    if key in (
        "include_third_party",
        "trace",
        "cache",
        "allow_privileged_role",
        "blocker_report",
        "rehearse",
    ):
        _expect(isinstance(value, bool), where, key, "true or false", value)
        return value
    if key in ("exclude_apps", "exclude_migrations"):
        _expect(
            isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
            where,
            key,
            "a list of strings",
            value,
        )
        return tuple(value)
    if key == "rules":
        return _convert_rules(value, where)
    if key == "migration_timeout":
        return _seconds(value, where, key)
    if key in _DURATION_KEYS:
        _expect(
            isinstance(value, str) and bool(_DURATION.match(value.strip())),
            where,
            key,
            'a PostgreSQL duration such as "5s", "500ms" or "1min"',
            value,
        )
        if key != "lock_timeout":  # lock_timeout "0" has always meant "no timeout"
            _expect(
                duration_ms(value) > 0,
                where,
                key,
                "a duration above zero (0 turns the timeout off: leave the key out instead)",
                value,
            )
        return value.strip()
    if key == "lock_retry_backoff":
        return _convert_backoff(value, where)
    # plain optional strings
    _expect(value is None or isinstance(value, str), where, key, "a string", value)
    return value


_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(value: Any, where: str, key: str) -> float:
    """A duration in seconds: a number, or text such as "90s", "10min", "1h" (0: no limit)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    _expect(match is not None, where, key, 'a duration such as "600", "90s" or "10min"', value)
    assert match is not None
    number = float(value.strip().rstrip("usminhd ").strip())
    return number * _UNIT_SECONDS[match.group(2) or "s"]


def _convert_backoff(value: Any, where: str) -> str | tuple[str, ...]:
    what = (
        f"one of {', '.join(BACKOFFS)}, or a non-empty list of pauses "
        '(PostgreSQL durations such as ["1s", "5s", "30s"])'
    )
    if isinstance(value, str) and value.strip().lower() in BACKOFFS:
        return value.strip().lower()
    _expect(
        isinstance(value, (list, tuple)) and len(value) > 0,
        where,
        "lock_retry_backoff",
        what,
        value,
    )
    for item in value:
        _expect(
            isinstance(item, str) and bool(_DURATION.match(item.strip())),
            where,
            "lock_retry_backoff",
            what,
            value,
        )
    return tuple(item.strip() for item in value)


def _check_deploy(values: Mapping[str, Any], where: Mapping[str, str]) -> None:
    """Settings of the deploy guard that only make sense together."""
    lock_timeout = values.get("lock_timeout")
    if "lock_retries" in where and not lock_timeout and not values.get("preflight_transaction_age"):
        raise ConfigurationError(
            f'{where["lock_retries"]}: lock_retries needs lock_timeout (e.g. "2s"): without it '
            "a migration waits for its locks for as long as it takes, so no wait ever ends "
            "to be retried"
        )
    if not lock_timeout or duration_ms(lock_timeout) == 0:
        return
    for key in ("statement_timeout", "transaction_timeout"):
        value = values.get(key)
        if value and duration_ms(value) <= duration_ms(lock_timeout):
            raise ConfigurationError(
                f"{where.get(key, where.get('lock_timeout', 'settings'))}: {key} ({value}) must be "
                f"longer than lock_timeout ({lock_timeout}): a lock wait would be ended by "
                f"{key} instead, and that is not retried"
            )


def _convert_rules(value: Any, where: str) -> dict[str, Severity | None]:
    _expect(isinstance(value, Mapping), where, "rules", 'a table of rule-id = "severity"', value)
    from .rules import registry

    known = registry()
    out: dict[str, Severity | None] = {}
    from .source import current_id

    for raw_id, level in value.items():
        rule_id = current_id(str(raw_id))
        if rule_id not in known:
            close = difflib.get_close_matches(str(rule_id), list(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigurationError(
                f"{where}: rules: unknown rule id {rule_id!r}{hint} "
                "(`migration-guard rules` lists them)"
            )
        if isinstance(level, str) and level.strip().lower() == OFF:
            out[rule_id] = None
        else:
            out[rule_id] = Severity.parse(level, where=f"{where}: rules.{rule_id}")
    return out


def _normalise(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw_key, value in raw.items():
        key = str(raw_key).replace("-", "_")
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, list(_FIELDS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"{where}: unknown key {raw_key!r}{hint}")
        out[key] = _convert(key, value, where)
    return out


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    start = start.resolve()
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_pyproject(path: Path) -> dict[str, Any]:
    """The ``[tool.migration_guard]`` table of ``path`` (empty when absent)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("migration_guard", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [tool.migration_guard] must be a table")
    return table


def project_root() -> Path:
    """Where the project lives: ``settings.BASE_DIR`` when set, else the working folder."""
    from django.conf import settings

    base = getattr(settings, "BASE_DIR", None)
    return Path(base) if base else Path.cwd()


def build_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    django_settings: Mapping[str, Any] | None = None,
    pyproject: Path | None = None,
    use_pyproject: bool = True,
) -> Config:
    """Merge defaults, pyproject, Django settings and command-line ``overrides``."""
    values: dict[str, Any] = {}
    #: key -> where its value came from (the last place that set it)
    origin: dict[str, str] = {}
    if pyproject is None and use_pyproject:
        found = find_pyproject(Path.cwd())
        if found is None:
            found = find_pyproject(project_root())
        pyproject = found
    if pyproject is not None:
        where = f"[tool.migration_guard] in {pyproject}"
        from_file = _normalise(read_pyproject(pyproject), where)
        values.update(from_file)
        origin.update(dict.fromkeys(from_file, where))
    if django_settings is None:
        from django.conf import settings

        django_settings = getattr(settings, "MIGRATION_GUARD", None) or {}
    if not isinstance(django_settings, Mapping):
        raise ConfigurationError("settings.MIGRATION_GUARD must be a dict")
    from_settings = _normalise(django_settings, "settings.MIGRATION_GUARD")
    values.update(from_settings)
    origin.update(dict.fromkeys(from_settings, "settings.MIGRATION_GUARD"))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        values[key] = _convert(key, value, "command line")
        origin[key] = "command line"
    _check_deploy(values, origin)
    return Config(**values)
