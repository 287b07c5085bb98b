"""Benchmark: what the deploy guard costs ``manage.py migrate`` when nothing is in the way.

Prints figures; it is not a test. From a checkout with the project's virtualenv:

    python benchmarks/deploy_guard.py                # 40 schema migrations + a 5000-query one
    python benchmarks/deploy_guard.py --rounds 5 --queries 20000

Method: one throwaway server (``migration_guard.postgres``, source ``local`` by
default). A project with one app: ``--migrations`` atomic migrations (a model,
a field, an index each) and one non-atomic migration whose ``RunPython`` sends
``--queries`` single-row INSERTs one by one (the guard's per-statement path:
each statement goes through its execute wrapper and the blocker watcher is
armed for it). Each round migrates two fresh databases, one with
``migrate --no-guard`` (Django's command: the floor) and one with the guard on
(``lock_timeout`` 2s, pre-flight on), in alternating order, each in its own
process. The figures are the ratios of the medians, guarded / floor, of the
wall time and of the CPU time of the ``migrate`` process (user + system; the
wall time also holds the server's share and the machine's other load).
``--preflight`` also turns pre-flight on (one ``pg_locks`` query per statement
that would block reads or writes).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from migration_guard.postgres import PostgresOptions, open_server
from tests.deploy_project import DeployProject, create_database, drop_database

GUARD = {"lock_timeout": "2s"}
PREFLIGHT = {"preflight_transaction_age": "1min"}
INSERTS = """
def forwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for n in range({queries}):
            cursor.execute("INSERT INTO bench_rows (n) VALUES (%s)", [n])
"""


def write(project: DeployProject, migrations: int, queries: int) -> None:
    for i in range(1, migrations + 1):
        model = f"M{i}"
        project.migration(
            f"{i:04d}_m{i}",
            [
                f"migrations.CreateModel('{model}', [('id', models.BigAutoField(primary_key=True)),"
                " ('code', models.CharField(max_length=20))])",
                f"migrations.AddField('{model.lower()}', 'n', models.IntegerField(null=True))",
                f"migrations.AddIndex('{model.lower()}', models.Index(fields=['code'], "
                f"name='m{i}_code'))",
            ],
        )
    project.migration(
        f"{migrations + 1:04d}_rows",
        [
            "migrations.RunSQL('CREATE TABLE bench_rows (n int)', migrations.RunSQL.noop)",
            "migrations.RunPython(forwards, migrations.RunPython.noop)",
        ],
        atomic=False,
        imports=INSERTS.format(queries=queries),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--postgres", default="local")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--migrations", type=int, default=40)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--preflight", action="store_true")
    args = parser.parse_args()
    guard = {**GUARD, **(PREFLIGHT if args.preflight else {})}
    times: dict[str, list[float]] = {"floor": [], "guarded": []}
    cpu: dict[str, list[float]] = {"floor": [], "guarded": []}
    with (
        open_server(PostgresOptions(source=args.postgres)) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for round_ in range(args.rounds):
            order = ["floor", "guarded"] if round_ % 2 == 0 else ["guarded", "floor"]
            for kind in order:
                info = create_database(server.info)
                try:
                    project = DeployProject(Path(tmp) / f"{kind}{round_}", info, guard=GUARD)
                    write(project, args.migrations, args.queries)
                    extra = ["--no-guard"] if kind == "floor" else []
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    started = time.monotonic()
                    result = project.migrate(*extra, timeout=1800)
                    elapsed = time.monotonic() - started
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if result.returncode != 0:
                        raise SystemExit(result.output)
                    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                    times[kind].append(elapsed)
                    cpu[kind].append(used)
                    print(
                        f"round {round_ + 1} {kind:8} wall {elapsed:6.2f} s  cpu {used:6.2f} s",
                        flush=True,
                    )
                finally:
                    drop_database(server.info, info)
    print(
        f"\n{args.migrations} schema migrations + {args.queries} single-row queries, "
        f"{args.rounds} rounds (PostgreSQL {server.server_version}), guard {guard}"
    )
    for name, values in (("wall", times), ("cpu", cpu)):
        floor = statistics.median(values["floor"])
        guarded = statistics.median(values["guarded"])
        print(
            f"{name:4}: floor (migrate --no-guard) {floor:6.2f} s, guarded {guarded:6.2f} s, "
            f"ratio {guarded / floor:.2f}"
        )


if __name__ == "__main__":
    main()
