"""The real-history case of ``benchmarks/run.py``: migrations written by other people.

The project is the test suite's third-party project (``tests/thirdparty``:
django.contrib, Wagtail, django CMS with django-filer, django-allauth, a few
hundred migrations with squashes, ``RunPython`` data steps and non-atomic
migrations), copied into a folder of its own whose settings read the database
from ``DATABASE_URL``. Its packages come with the test extras
(``pip install -e ".[test]"``).

Commands, each its own process, interleaved over rounds:

* ``manage.py check``: Django's start-up, the floor of any command;
* ``manage.py migrate`` of the whole history on a fresh database: the floor of
  a traced audit, which has to apply the history once too;
* the cold traced audit of every migration, each judged alone
  (``--all --include-third-party``);
* the static audit of the same (``--no-trace``);
* a change of three apps, as CI audits it: ``--unapplied`` against a database
  whose ``django_migrations`` is at a cut (the last migrations of
  ``wagtailcore``, ``cms`` and ``account`` not applied), cold (empty base-state
  cache) and warm (cache filled).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (app, first migration of the change): everything from there on is unapplied.
CHANGE = (
    ("wagtailcore", "0096_referenceindex_referenceindex_source_object_and_more"),
    ("cms", "0043_alter_globalpagepermission_can_view_and_more"),
    ("account", "0007_emailaddress_idx_email"),
)

SETTINGS = '''\
"""The third-party test project, with its database from DATABASE_URL (benchmarks only)."""

import os
from urllib.parse import parse_qs, unquote, urlsplit

from tests.thirdparty.settings import *  # noqa: F403


def _database(url):
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or "") or query.get("host", [""])[0],
        "PORT": str(parts.port or query.get("port", [""])[0]),
    }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": _database(os.environ["DATABASE_URL"])}
'''

MANAGE = """\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

#: Records the cut in django_migrations (fake: the audit reads nothing else there).
CUT = """
import json, sys
import django
django.setup()
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from migration_guard.discovery import full_plan

loader = MigrationLoader(None, ignore_no_migrations=True)
plan = full_plan(loader)
first = {app: name for app, name in json.loads(sys.argv[1])}
unapplied = set()
for app, name in plan:
    if app in first and name >= first[app]:
        unapplied.add((app, name))
for key in plan:
    if any(p.key in unapplied for p in loader.graph.node_map[key].parents):
        unapplied.add(key)
recorder = MigrationRecorder(connection)
recorder.ensure_schema()
for app, name in plan:
    if (app, name) not in unapplied:
        recorder.record_applied(app, name)
print(json.dumps(sorted(unapplied)))
"""


def available() -> str | None:
    """None when the third-party packages are installed, else what is missing."""
    import importlib.util

    missing = [m for m in ("wagtail", "cms", "filer", "allauth") if not importlib.util.find_spec(m)]
    if missing:
        return f"the test extras are not installed ({', '.join(missing)}): pip install -e '.[test]'"
    return None


def make_project(root: Path) -> Path:
    """Write the project into ``root`` (a git repository, so that git-based
    defaults of the audit behave as in a real project)."""
    (root / "realproject").mkdir(parents=True)
    (root / "realproject" / "__init__.py").write_text("")
    (root / "realproject" / "settings.py").write_text(SETTINGS)
    (root / "manage.py").write_text(MANAGE)
    (root / "pyproject.toml").write_text("[tool.migration_guard]\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def pythonpath() -> str:
    return str(REPO)


def record_cut(root: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    """Mark the history as applied up to the cut in ``env``'s DATABASE_URL."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CUT), json.dumps(CHANGE)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"recording the cut failed:\n{done.stderr[-3000:]}")
    return [tuple(k) for k in json.loads(done.stdout)]
