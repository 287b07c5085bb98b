"""Benchmark: the planner's generated backfill against one plain UPDATE of the whole table.

Prints figures; it is not a test. Run it from a checkout with the project's
virtualenv active:

    python benchmarks/backfill.py                      # 1,000,000 rows, PostgreSQL "local"
    python benchmarks/backfill.py --postgres embedded  # the PostgreSQL wheel instead
    python benchmarks/backfill.py --rows 200000 --rounds 3

Method
------
1. A throwaway server (``migration_guard.postgres``), and a Django project in a
   temporary folder: one app, ``bench.Item`` (``id`` bigint, ``value`` integer,
   ``label`` varchar). ``migrate``, then ``--rows`` rows in one
   ``INSERT ... SELECT generate_series``, ``VACUUM ANALYZE``.
2. The model's ``value`` becomes a ``BigIntegerField`` and ``plan_zero_downtime
   bench --no-verify`` writes the expand/contract plan: expand (``value__new``
   and the trigger that keeps it in step), the copy (the generated backfill),
   validate, switch. ``migrate`` applies the expand migration.
3. The database is copied (``CREATE DATABASE ... TEMPLATE``): the same rows, the
   same trigger, the same dead-tuple-free heap. On the copy, the floor: one plain
   ``UPDATE bench_item SET value__new = value::bigint`` (what a hand-written
   migration would run; it holds every row lock until it ends).
4. On the original, ``migrate bench <copy migration>`` runs the generated
   backfill in a child process that times every batch (the UPDATE statement and
   its COMMIT), while a writer (another connection) updates one random row of
   ``bench_item`` and inserts one row, over and over, each in its own
   transaction, timing each statement: its longest wait is what a concurrent
   writer of the application would see.

Figures: rows/s of each, their ratio (goal: the backfill reaches at least 0.5 of
the plain UPDATE's throughput), the longest batch (goal: at most 200 ms) and the
writer's longest wait during the backfill (goal: at most 250 ms); for contrast,
the writer's longest wait during the plain UPDATE. ``--rounds`` repeats steps
3-4 on fresh copies and prints the median of each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from migration_guard.postgres import PostgresOptions, open_server  # noqa: E402
from migration_guard.postgres.base import ConnectionInfo, version_text  # noqa: E402
from migration_guard.postgres.scratch import create_database, drop_database, new_name  # noqa: E402

SETTINGS = """
import os
from urllib.parse import parse_qs, unquote, urlsplit

SECRET_KEY = "benchmark"
INSTALLED_APPS = ["django.contrib.contenttypes", "migration_guard", "bench"]
url = urlsplit(os.environ["DATABASE_URL"])
query = parse_qs(url.query)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/"),
        "USER": unquote(url.username or ""),
        "PASSWORD": unquote(url.password or ""),
        "HOST": query.get("host", [url.hostname or ""])[0],
        "PORT": query.get("port", [str(url.port or "")])[0],
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
MIGRATION_GUARD = {}
"""

MODELS = """
from django.db import models


class Item(models.Model):
    value = models.{value_class}()
    label = models.CharField(max_length=40)
"""

MANAGE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
from django.core.management import execute_from_command_line
execute_from_command_line(sys.argv)
"""

#: Runs in the project: the copy migration, each batch (UPDATE and COMMIT) timed.
DRIVER = """
import json, sys, time
import django
django.setup()
from django.core.management import call_command
from django.db import connection

batches = []
state = {"started": None}


def timed(execute, sql, params, many, context):
    if not sql.startswith("WITH bound AS"):
        return execute(sql, params, many, context)
    began = time.perf_counter()
    state["started"] = state["started"] or began
    try:
        return execute(sql, params, many, context)
    finally:
        state["batch"] = began


connection.ensure_connection()
commit = connection._commit


def timed_commit():
    commit()
    began = state.pop("batch", None)
    if began is not None:
        batches.append(time.perf_counter() - began)
        state["ended"] = time.perf_counter()


connection._commit = timed_commit
with connection.execute_wrapper(timed):
    call_command("migrate", "bench", sys.argv[1], verbosity=0)
print(json.dumps({"batches": batches, "seconds": state["ended"] - state["started"]}))
"""


def django_url(info: ConnectionInfo) -> str:
    from urllib.parse import quote

    user = quote(info.user)
    password = f":{quote(info.password)}" if info.password else ""
    if info.host.startswith("/"):
        return (
            f"postgresql://{user}{password}@/{info.dbname}?host={quote(info.host)}&port={info.port}"
        )
    return f"postgresql://{user}{password}@{info.host}:{info.port}/{info.dbname}"


class Project:
    def __init__(self, root: Path, info: ConnectionInfo) -> None:
        self.root = root
        self.info = info
        (root / "project").mkdir(parents=True)
        (root / "project" / "__init__.py").write_text("")
        (root / "project" / "settings.py").write_text(SETTINGS)
        (root / "bench" / "migrations").mkdir(parents=True)
        (root / "bench" / "__init__.py").write_text("")
        (root / "bench" / "migrations" / "__init__.py").write_text("")
        (root / "manage.py").write_text(MANAGE)
        (root / "pyproject.toml").write_text("[tool.migration_guard]\n")
        self.models("IntegerField")

    def models(self, value_class: str) -> None:
        (self.root / "bench" / "models.py").write_text(MODELS.format(value_class=value_class))

    def env(self, dbname: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), str(REPO / "src")])
        env["DJANGO_SETTINGS_MODULE"] = "project.settings"
        env["DATABASE_URL"] = django_url(self.info.with_dbname(dbname))
        env["MIGRATION_GUARD_DATABASE_URL"] = self.info.conninfo()
        return env

    def run(self, dbname: str, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, *args],
            cwd=self.root,
            env=self.env(dbname),
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def migrations(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "bench" / "migrations").glob("[0-9]*.py"))


class Writer(threading.Thread):
    """The application meanwhile: one-row UPDATEs and INSERTs, each its own transaction."""

    def __init__(self, info: ConnectionInfo, rows: int) -> None:
        super().__init__(daemon=True)
        self.info = info
        self.rows = rows
        self.waits: list[float] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        import random

        try:
            with self.info.connect(autocommit=True) as conn:
                while not self.stop.is_set():
                    key = random.randint(1, self.rows)
                    began = time.perf_counter()
                    conn.execute("UPDATE bench_item SET label = 'w' WHERE id = %s", (key,))
                    self.waits.append(time.perf_counter() - began)
                    began = time.perf_counter()
                    conn.execute("INSERT INTO bench_item (value, label) VALUES (%s, 'new')", (key,))
                    self.waits.append(time.perf_counter() - began)
        except BaseException as exc:  # reported by the caller
            self.error = exc


def plain_update(info: ConnectionInfo, rows: int) -> tuple[float, float]:
    """(seconds of one UPDATE of the whole table, the writer's longest wait meanwhile)."""
    writer = Writer(info, rows)
    with info.connect(autocommit=True) as conn:
        writer.start()
        time.sleep(0.2)
        began = time.perf_counter()
        conn.execute('UPDATE bench_item SET "value__new" = "value"::bigint')
        seconds = time.perf_counter() - began
        time.sleep(0.2)
        writer.stop.set()
        writer.join()
    if writer.error:
        raise writer.error
    return seconds, max(writer.waits, default=0.0)


def generated_backfill(project: Project, dbname: str, target: str, rows: int) -> dict[str, Any]:
    info = project.info.with_dbname(dbname)
    writer = Writer(info, rows)
    writer.start()
    time.sleep(0.2)
    out = project.run(dbname, "-c", DRIVER, target)
    writer.stop.set()
    writer.join()
    if writer.error:
        raise writer.error
    data = json.loads(out.strip().splitlines()[-1])
    data["writer_max"] = max(writer.waits, default=0.0)
    data["writer_ops"] = len(writer.waits)
    return data


def clone(server: Any, source: str) -> str:
    name = new_name("bfcopy")
    with server.info.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="local", choices=["local", "embedded", "url"])
    parser.add_argument("--database-url")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    options = PostgresOptions(source=args.postgres, database_url=args.database_url)
    with open_server(options) as server, tempfile.TemporaryDirectory() as tmp:
        print(f"PostgreSQL {version_text(server.server_version)} ({server.description})")
        print(f"load average: {os.getloadavg()[0]:.2f}, cores: {os.cpu_count()}")
        base = new_name("bfbase")
        create_database(server, base)
        copies: list[str] = []
        try:
            project = Project(Path(tmp) / "bench", server.info)
            project.run(base, "manage.py", "makemigrations", "bench", "-v", "0")
            project.run(base, "manage.py", "migrate", "-v", "0")
            with server.info.with_dbname(base).connect(autocommit=True) as conn:
                began = time.perf_counter()
                conn.execute(
                    "INSERT INTO bench_item (value, label) SELECT g, 'row ' || g "
                    "FROM generate_series(1, %s) AS g",
                    (args.rows,),
                )
                conn.execute("VACUUM ANALYZE bench_item")
                print(f"seeded {args.rows:,} rows in {time.perf_counter() - began:.1f}s")
            project.models("BigIntegerField")
            before = project.migrations()
            project.run(base, "manage.py", "plan_zero_downtime", "bench", "--no-verify")
            written = [m for m in project.migrations() if m not in before]
            expand = written[0]
            copy = next(m for m in written if "_copy_" in m)
            print(f"plan: {', '.join(written)}")
            project.run(base, "manage.py", "migrate", "bench", expand, "-v", "0")
            figures: dict[str, list[float]] = {
                "plain_seconds": [],
                "plain_writer": [],
                "seconds": [],
                "longest": [],
                "writer": [],
                "batches": [],
                "median_batch": [],
                "p95_batch": [],
            }
            for round_ in range(1, args.rounds + 1):
                floor_db, backfill_db = clone(server, base), clone(server, base)
                copies += [floor_db, backfill_db]
                seconds, plain_writer = plain_update(server.info.with_dbname(floor_db), args.rows)
                data = generated_backfill(project, backfill_db, copy, args.rows)
                figures["plain_seconds"].append(seconds)
                figures["plain_writer"].append(plain_writer)
                figures["seconds"].append(data["seconds"])
                figures["longest"].append(max(data["batches"]))
                figures["writer"].append(data["writer_max"])
                figures["batches"].append(len(data["batches"]))
                ordered = sorted(data["batches"])
                figures["median_batch"].append(statistics.median(ordered))
                figures["p95_batch"].append(ordered[int(len(ordered) * 0.95)])
                print(
                    f"round {round_}: plain UPDATE {seconds:.2f}s; backfill {data['seconds']:.2f}s "
                    f"in {len(data['batches'])} batches (longest {max(data['batches']) * 1000:.0f} "
                    f"ms), writer's longest wait {data['writer_max'] * 1000:.0f} ms over "
                    f"{data['writer_ops']} statements"
                )
                for name in (floor_db, backfill_db):
                    drop_database(server, name)
                    copies.remove(name)
        finally:
            for name in [*copies, base]:
                drop_database(server, name)
    median = {k: statistics.median(v) for k, v in figures.items()}
    plain_rate = args.rows / median["plain_seconds"]
    rate = args.rows / median["seconds"]
    rows = [
        (f"figure ({args.rows:,} rows, median of {args.rounds})", "value", "goal"),
        ("---", "---", "---"),
        (
            "plain UPDATE of the whole table",
            f"{median['plain_seconds']:.2f} s, {plain_rate:,.0f} rows/s",
            "the floor",
        ),
        (
            "generated backfill",
            f"{median['seconds']:.2f} s, {rate:,.0f} rows/s in {median['batches']:.0f} batches",
            "",
        ),
        ("backfill / plain UPDATE throughput", f"{rate / plain_rate:.2f}", ">= 0.5"),
        ("longest batch (UPDATE + COMMIT)", f"{median['longest'] * 1000:.0f} ms", "<= 200 ms"),
        (
            "batch, median / 95th percentile",
            f"{median['median_batch'] * 1000:.0f} / {median['p95_batch'] * 1000:.0f} ms",
            "about 100 ms",
        ),
        (
            "writer's longest wait, during the backfill",
            f"{median['writer'] * 1000:.0f} ms",
            "<= 250 ms",
        ),
        (
            "writer's longest wait, during the plain UPDATE",
            f"{median['plain_writer'] * 1000:.0f} ms",
            "(contrast)",
        ),
    ]
    print()
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
