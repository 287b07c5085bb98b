"""Prove a plan on PostgreSQL, in a subprocess whose working folder is the project copy.

Input (JSON, argv[1]): the app, the migrations the plan wrote (names), where to go back to,
probes (SQL the previous release runs after the forward migration: it must succeed), and
the URL of the server for the audit. DATABASE_URL (environment) is the database holding
rows. Output (JSON on the last line of stdout): what happened.
"""

import json
import os
import sys
import time
import traceback

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_project.settings")
sys.path.insert(0, os.getcwd())
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from migration_guard.conf import build_config  # noqa: E402
from migration_guard.discovery import Selection  # noqa: E402
from migration_guard.engine import AuditRequest, run_audit  # noqa: E402

args = json.loads(sys.argv[1])
app = args["app"]
result = {"forward": None, "probes": [], "backward": None, "again": None, "makemigrations": None}


def rows(table):
    """Rows of a table (or view), None when it does not exist at this point."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{table}"'])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        return cursor.fetchone()[0]


result["seconds"] = {}


def step(name, func):
    started = time.monotonic()
    try:
        func()
        result[name] = "ok"
    except BaseException as exc:
        result[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    result["seconds"][name] = round(time.monotonic() - started, 2)


result["rows_before"] = {t: rows(t) for t in args.get("tables", [])}
step("forward", lambda: call_command("migrate", app, args["last"], verbosity=0))
for probe in args.get("probes", []):
    try:
        with connection.cursor() as cursor:
            cursor.execute(probe)
        result["probes"].append("ok")
    except Exception as exc:
        result["probes"].append(f"{type(exc).__name__}: {exc}")
result["facts"] = []
for query in args.get("facts", []):
    with connection.cursor() as cursor:
        cursor.execute(query)
        result["facts"].append([list(r) for r in cursor.fetchall()])
result["rows_after"] = {t: rows(t) for t in args.get("tables", [])}
step("backward", lambda: call_command("migrate", app, args["back"], verbosity=0))
step("again", lambda: call_command("migrate", app, args["last"], verbosity=0))


def makemigrations():
    try:
        call_command("makemigrations", "--check", "--dry-run", verbosity=1)
    except SystemExit as exc:
        raise AssertionError("makemigrations --check found changes") from exc


step("makemigrations", makemigrations)
config = build_config(
    {"postgres": "url", "database_url": args["audit_url"]}, django_settings={}, use_pyproject=False
)
started = time.monotonic()
report = run_audit(
    AuditRequest(selection=Selection(keys=tuple((app, n) for n in args["audit"])), config=config)
)
result["audit"] = [
    {"migration": f.migration, "rule": f.rule, "severity": f.severity.value, "message": f.message}
    for f in report.findings
]
result["audited"] = [m.name for m in report.migrations]
result["seconds"]["audit"] = round(time.monotonic() - started, 2)
print(json.dumps(result))
