"""How a command ends when something goes wrong: never with the status of findings.

Exit statuses of the commands:

* 0: clean; 1: findings at or above ``--fail-on`` (``migration_audit``), or a plan
  that could not be verified (``plan_zero_downtime``);
* 2: a usage, project or environment problem (bad option, settings, no
  PostgreSQL, migrations that do not load, interrupted), with one line that says
  what to do;
* 3: a bug in django-migration-guard itself. The traceback is printed at
  ``-v 2`` (or with ``--traceback``), with where to report it.

CI treats 1 as "the change is unsafe": a crash must never look like that.
"""

from __future__ import annotations

import contextlib
import signal
import traceback
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, SystemCheckError

from ..exceptions import Interrupted, MigrationGuardError
from ..signals import terminating_raises

USAGE = 2
INTERNAL = 3
ISSUES = "https://github.com/django-migration-guard/django-migration-guard/issues"


@contextlib.contextmanager
def command_errors(
    stderr: Any,
    *,
    verbosity: int = 1,
    traceback_: bool = False,
    interrupted: str = "cleaned up",
) -> Iterator[None]:
    """Turn what a command's work raises into the right exit status and message.

    ``interrupted`` is what the message says after a signal stopped the work.
    """
    try:
        with terminating_raises():
            yield
    except SystemCheckError as exc:
        raise CommandError(
            f"{exc}\nThe project's system checks fail; `python manage.py check` shows the same. "
            "Fix them first.",
            returncode=USAGE,
        ) from exc
    except CommandError:
        raise
    except MigrationGuardError as exc:
        raise CommandError(_shown(redact(str(exc))), returncode=USAGE) from exc
    except Interrupted as exc:
        raise CommandError(
            f"interrupted by signal {exc.signum}; {interrupted}", returncode=USAGE
        ) from None
    except KeyboardInterrupt:  # SIGINT: every `with` block has cleaned up on the way out
        raise CommandError(
            f"interrupted by signal {int(signal.SIGINT)}; {interrupted}", returncode=USAGE
        ) from None
    except (ImportError, ImproperlyConfigured) as exc:
        if _no_driver(exc):
            raise CommandError(
                "PostgreSQL's client library (libpq) cannot be loaded, so psycopg does not "
                f"work here ({exc}). Install the self-contained driver: pip install "
                "'psycopg[binary]' (django-migration-guard[embedded] brings it), or the "
                "system's libpq (e.g. apt-get install libpq5).",
                returncode=USAGE,
            ) from exc
        if isinstance(exc, ImportError):
            raise _internal(exc, stderr, verbosity, traceback_) from exc
        raise CommandError(
            f"the project's Django settings are not usable: {_shown(redact(str(exc)))} "
            "(`python manage.py check` shows the same problem).",
            returncode=USAGE,
        ) from exc
    except Exception as exc:
        raise _internal(exc, stderr, verbosity, traceback_) from exc


def _shown(text: str) -> str:
    """Error text can carry names from the merge request: no control characters, no
    workflow commands (see report/escaping.py)."""
    from ..report.escaping import for_log

    return for_log(text)


def _no_driver(exc: BaseException) -> bool:
    text = str(exc)
    return "libpq" in text or "psycopg2 or psycopg" in text or "no pq wrapper" in text


def _internal(exc: Exception, stderr: Any, verbosity: int, traceback_: bool) -> CommandError:
    """A bug of ours: exit 3, the traceback at -v 2, where to report it."""
    if traceback_:
        raise exc
    if verbosity >= 2:
        stderr.write("".join(traceback.format_exception(exc)))
    how = "" if verbosity >= 2 else " Run again with -v 2 for the traceback and"
    return CommandError(
        f"internal error in django-migration-guard: {type(exc).__name__}: "
        f"{_shown(redact(str(exc)))}.{how} please report it at {ISSUES} "
        f"(exit status {INTERNAL}: not a finding).",
        returncode=INTERNAL,
    )


def redact(text: str) -> str:
    from ..postgres.base import redact as _redact

    try:
        return _redact(text)
    except ImportError:  # no driver: nothing was connected to, no URL to hide
        return text
