"""The generated backfill (issue 12, item 7): set-based, keyset batches, resumable, on stderr.

The helper every generated set-based backfill carries (``backfill_in_batches``)
is rendered from the planner's template and run on the session's PostgreSQL,
on tables keyed by an integer, by text and by two columns. Its speed against a
plain UPDATE is measured by ``benchmarks/backfill.py`` (figures in
benchmarks/README.md), not here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest

from migration_guard.djangodb import connections_pointed_at
from migration_guard.planner.writer import code, render
from migration_guard.postgres.scratch import scratch_database

TABLES = {
    "int_key": "CREATE TABLE int_key (id bigint PRIMARY KEY, v integer, n bigint)",
    "text_key": "CREATE TABLE text_key (id text PRIMARY KEY, v integer, n bigint)",
    "two_keys": (
        "CREATE TABLE two_keys (a integer, b text, v integer, n bigint, PRIMARY KEY (a, b))"
    ),
}
FILL = {
    "int_key": "INSERT INTO int_key SELECT g, g FROM generate_series(1, 2500) g",
    "text_key": "INSERT INTO text_key SELECT md5(g::text), g FROM generate_series(1, 2500) g",
    "two_keys": (
        "INSERT INTO two_keys SELECT g % 7, md5(g::text), g FROM generate_series(1, 2500) g"
    ),
}
KEYS = {"int_key": ["id"], "text_key": ["id"], "two_keys": ["a", "b"]}


def helper(batch_size: int) -> dict[str, Any]:
    """The generated module's constants and helper, as a migration file defines them."""
    source = (
        "import sys\nimport time\nfrom django.db import transaction\n\n"
        + render("backfill_settings.py.j2", batch_size=batch_size)
        + "\n"
        + code("", "backfill_in_batches")
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<generated migration>", "exec"), namespace)
    return namespace


@pytest.fixture
def connection(pg_server) -> Iterator[Any]:
    with (
        scratch_database(pg_server, purpose="backfill") as info,
        connections_pointed_at(info, "default") as conn,
    ):
        with conn.cursor() as cursor:
            for table, sql in TABLES.items():
                cursor.execute(sql)
                cursor.execute(FILL[table])
        yield conn
        conn.close()


def run(connection: Any, namespace: dict[str, Any], table: str) -> list[tuple[str, Any]]:
    statements: list[tuple[str, Any]] = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        namespace["backfill_in_batches"](
            connection,
            table=table,
            key=KEYS[table],
            assignment='"n" = "v"::bigint * 2',
            todo='"n" IS NULL',
        )
    return statements


def filled(connection: Any, table: str) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), count(*) FILTER (WHERE n = v * 2) FROM {table}")
        return cursor.fetchone()


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_row_is_filled_in_keyset_batches(connection, table, capsys):
    statements = run(connection, helper(100), table)
    assert filled(connection, table) == (2500, 2500)
    updates = [s for s, _ in statements if s.startswith("WITH bound AS")]
    assert len(updates) > 3  # batches, not one statement
    for sql in updates:
        assert "UPDATE" in sql and "OFFSET" not in sql.upper()
        assert re.search(r"<= \(SELECT .* FROM bound\)", sql)  # a key range, not a list
    # later batches start after the previous one's last key
    assert all(re.search(r"\) > \(", sql) for sql in updates[1:])
    out, err = capsys.readouterr()
    assert out == ""  # never stdout (machine output of the command lives there)
    assert f"{table}: 2500 rows backfilled in" in err


def test_batch_size_adapts_to_the_time_a_batch_takes(connection):
    statements = [p for s, p in run(connection, helper(10), "int_key") if s.startswith("WITH")]
    # parameters: the previous batch's last key (none for the first batch), then the size
    sizes = [statements[0][0]] + [params[1] for params in statements[1:]]
    assert sizes[0] == 10
    assert max(sizes) > 10  # fast batches grow (by half at most each time)
    assert all(b <= a * 3 // 2 + 1 for a, b in itertools.pairwise(sizes))


def test_a_rerun_only_touches_rows_still_to_fill(connection, capsys):
    namespace = helper(500)
    run(connection, namespace, "two_keys")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE two_keys SET n = NULL WHERE a = 3")  # an interruption's leftovers
        cursor.execute("SELECT count(*) FROM two_keys WHERE a = 3")
        (left,) = cursor.fetchone()
    capsys.readouterr()
    run(connection, namespace, "two_keys")
    assert filled(connection, "two_keys") == (2500, 2500)
    assert f"two_keys: {left} rows backfilled in" in capsys.readouterr().err


def test_rows_written_meanwhile_are_left_to_their_writer(connection):
    """A row that got its value from elsewhere (the trigger, the new code) is not rewritten."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE int_key SET n = -1 WHERE id <= 10")
    run(connection, helper(100), "int_key")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM int_key WHERE n = -1")
        assert cursor.fetchone() == (10,)
