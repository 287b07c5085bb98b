"""Non-atomic migrations the planner writes can be retried statement by statement.

A deploy that retries the statement that hit ``lock_timeout`` (or runs a
half-applied non-atomic migration again) must find every statement harmless
the second time: ``CREATE INDEX CONCURRENTLY IF NOT EXISTS``, ``DROP INDEX
CONCURRENTLY IF EXISTS``, session settings, backfills that only touch rows
still to fill. A failed CONCURRENTLY build leaves an INVALID index, which IF NOT
EXISTS would accept: the statement after each build refuses it, saying what to
run (a deploy guard drops it before its retry).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import migrations

from migration_guard.conf import Config
from migration_guard.pgversion import PgFacts
from migration_guard.planner.context import PlanContext, sql_connection
from migration_guard.planner.steps import concurrent_create, index_op
from migration_guard.postgres.scratch import create_database, drop_database, new_name

from .conftest import GOLDEN

#: Forward or reverse statements a non-atomic migration may hold: each safe to run twice.
IDEMPOTENT = re.compile(
    r"^(?:SET lock_timeout = '[^']+'|RESET lock_timeout"
    r"|CREATE (?:UNIQUE )?INDEX CONCURRENTLY IF NOT EXISTS "
    r"|DROP INDEX CONCURRENTLY IF EXISTS "
    r"|DO \$\$ BEGIN IF EXISTS \(SELECT 1 FROM pg_index WHERE indexrelid = to_regclass)"
)
#: RunPython functions the planner writes: backfills that skip rows already filled.
BACKFILL = re.compile(r"^(?:backfill|fill|copy)_\w+$")


def statements(value: Any) -> list[str]:
    if value is None or value == migrations.RunSQL.noop:
        return []
    if isinstance(value, str):
        return [value]
    return [v if isinstance(v, str) else v[0] for v in value]


def operations(ops: list[Any]) -> list[Any]:
    out = []
    for op in ops:
        if isinstance(op, migrations.SeparateDatabaseAndState):
            out.extend(operations(op.database_operations))
        else:
            out.append(op)
    return out


def non_atomic_goldens() -> list[Path]:
    found = []
    for path in sorted(GOLDEN.rglob("*.py")):
        if "atomic = False" in path.read_text():
            found.append(path)
    return found


@pytest.mark.parametrize(
    "path", non_atomic_goldens(), ids=lambda p: p.relative_to(GOLDEN).as_posix()
)
def test_every_statement_of_a_generated_non_atomic_migration_can_run_twice(path):
    namespace: dict[str, Any] = {"__name__": f"golden_{path.stem}"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    migration = namespace["Migration"]
    assert migration.atomic is False
    for op in operations(migration.operations):
        if isinstance(op, migrations.RunSQL):
            for sql in statements(op.sql) + statements(op.reverse_sql):
                assert IDEMPOTENT.match(sql), f"{path.name}: not safe to retry: {sql}"
        elif isinstance(op, migrations.RunPython):
            assert BACKFILL.match(op.code.__name__), f"{path.name}: {op.code.__name__}"
        else:
            raise AssertionError(f"{path.name}: {op.describe()} in a non-atomic migration")


def test_there_are_non_atomic_goldens_to_check():
    assert len(non_atomic_goldens()) >= 8


@pytest.fixture
def database(pg_server):
    name = new_name("idempotent")
    create_database(pg_server, name)
    try:
        with pg_server.info.with_dbname(name).connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE item (id bigint PRIMARY KEY, code text)")
            conn.execute("INSERT INTO item SELECT g, 'c' || (g % 3) FROM generate_series(1, 30) g")
            yield conn
    finally:
        drop_database(pg_server, name)


def plan_context() -> PlanContext:
    return PlanContext(
        app_label="x",
        config=Config(),
        pg=PgFacts(15),
        connection=sql_connection(),
        existing_models=frozenset(),
    )


def test_an_index_build_runs_twice_and_refuses_an_invalid_leftover(database):
    plan = plan_context()
    create = concurrent_create('CREATE INDEX "item_code_uniq" ON "item" ("code")', unique=True)
    op = index_op(plan, create, "item_code_uniq")
    build, check = op.sql
    # duplicate codes: the build fails and leaves an INVALID index behind
    with pytest.raises(psycopg.errors.UniqueViolation):
        database.execute(build)
    database.execute(build)  # IF NOT EXISTS: the INVALID index is taken for the index...
    with pytest.raises(psycopg.errors.RaiseException, match="is INVALID") as failed:
        database.execute(check)  # ...but not by the check, which says what to do
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "item_code_uniq"' in str(failed.value)
    database.execute("UPDATE item SET code = 'c' || id")
    database.execute(op.reverse)  # what a deploy guard runs before its retry
    for _ in range(2):  # the retry, and a rerun of the whole migration
        database.execute(build)
        database.execute(check)
    valid = database.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'item_code_uniq'::regclass"
    ).fetchone()
    assert valid == (True,)
    database.execute(op.reverse)
    database.execute(op.reverse)  # DROP ... IF EXISTS, twice
