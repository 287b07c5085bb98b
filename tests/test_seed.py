"""--seed-rows: the tables a change touches get generated rows before it is traced.

What proves the rows are there is PostgreSQL itself: the change under audit
carries a ``DO`` block that raises unless the table holds exactly the seeded
count, so the audit only succeeds when the rows existed while it was traced.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db.migrations.operations import (
    AddField,
    AlterField,
    RenameField,
    RunSQL,
    SeparateDatabaseAndState,
)
from django.db.migrations.state import ModelState, ProjectState
from django.db.models import BigAutoField, ForeignKey, IntegerField, deletion

from migration_guard.management.commands.migration_audit import Command
from migration_guard.postgres import PostgresServer
from migration_guard.postgres.base import ConnectionInfo
from migration_guard.postgres.scratch import scratch_database
from migration_guard.trace.seed import seed_tables, sql_tables, tables_to_seed, touched_tables

CUSTOMER = (
    "migrations.CreateModel('Customer', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('email', models.EmailField(unique=True)), "
    "('joined', models.DateTimeField())])"
)
ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField()), "
    "('note', models.CharField(max_length=20, null=True)), "
    "('created', models.DateTimeField())])"
)
ORDER_OF_CUSTOMER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField()), "
    "('customer', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, "
    "to='{label}.customer'))])"
)
QTY_TO_BIGINT = "migrations.AlterField('order', 'qty', models.BigIntegerField())"


def expect_rows(table: str, rows: int, op: str = "<>") -> str:
    """A RunSQL that fails the migration unless ``table`` holds ``rows`` rows."""
    return (
        'migrations.RunSQL("DO $$ BEGIN IF (SELECT count(*) FROM '
        f"{table}) {op} {rows} THEN RAISE EXCEPTION 'not seeded'; END IF; END $$\", "
        "migrations.RunSQL.noop)"
    )


def seed_notes(report) -> list[str]:
    return [n for n in report.notes if "seed" in n]


def test_seeded_rows_are_there_while_the_change_is_traced(make_app):
    app = make_app([ORDER], [QTY_TO_BIGINT, expect_rows("{label}_order", 300)])
    _write(app, 2, "{label}", app.label)
    table = f"{app.label}_order"
    report = app.audit(seed_rows=300)
    result = report.migrations[0]
    assert result.status == "audited", result.error
    assert seed_notes(report)[0].startswith("--seed-rows: inserted generated rows before tracing")
    assert f"300 into {table}" in seed_notes(report)[0]
    [rewrite] = app.findings(report, "alter-column-type-rewrite")
    assert rewrite.evidence.value == "observed"
    assert table in rewrite.rewritten
    assert rewrite.duration_ms is not None

    unseeded = app.audit()
    assert unseeded.migrations[0].status == "failed"  # the same check, on an empty table
    assert "not seeded" in (unseeded.migrations[0].error or "")
    assert not seed_notes(unseeded)


def _write(app, number: int, old: str, new: str) -> None:
    path = app.path / "migrations" / f"{app.names[number - 1]}.py"
    path.write_text(path.read_text().replace(old, new))


def test_not_null_foreign_key_parents_are_seeded_first(make_app):
    app = make_app(
        [CUSTOMER, ORDER_OF_CUSTOMER],
        [
            "migrations.AddIndex('order', models.Index(fields=['qty'], name='ord_qty_idx'))",
            expect_rows("{label}_customer", 200),
            expect_rows("{label}_order", 200),
        ],
    )
    _write(app, 1, "{label}", app.label)
    _write(app, 2, "{label}", app.label)
    report = app.audit(seed_rows=200)
    assert report.migrations[0].status == "audited", report.migrations[0].error
    [note] = seed_notes(report)
    customer, order = f"200 into {app.label}_customer", f"200 into {app.label}_order"
    assert customer in note and order in note
    assert note.index(customer) < note.index(order)  # parents first


def test_a_table_that_cannot_be_seeded_is_skipped_with_a_note(make_app):
    app = make_app(
        [
            ORDER,
            "migrations.AddConstraint('order', models.CheckConstraint("
            f"{'condition' if _django_5_1() else 'check'}=models.Q(qty__gt=10**9), "
            "name='qty_huge'))",
            CUSTOMER,
        ],
        [
            QTY_TO_BIGINT,
            "migrations.AddIndex('customer', models.Index(fields=['joined'], name='c_j_idx'))",
            expect_rows("{label}_order", 0),
            expect_rows("{label}_customer", 50),
        ],
    )
    _write(app, 2, "{label}", app.label)
    report = app.audit(seed_rows=50)
    assert report.migrations[0].status == "audited", report.migrations[0].error
    notes = seed_notes(report)
    assert f"50 into {app.label}_customer" in notes[0]
    skipped = [n for n in notes if n.startswith(f"could not seed {app.label}_order: ")]
    assert len(skipped) == 1
    assert 'violates check constraint "qty_huge"' in skipped[0]


def _django_5_1() -> bool:
    import django

    return django.VERSION >= (5, 1)


# --- which tables ---------------------------------------------------------------------------


def test_touched_tables_come_from_the_state_before_the_change():
    state = ProjectState()
    state.add_model(ModelState("shop", "Customer", [("id", BigAutoField(primary_key=True))]))
    state.add_model(
        ModelState(
            "shop",
            "Order",
            [("id", BigAutoField(primary_key=True)), ("qty", IntegerField())],
            options={"db_table": "orders"},
        )
    )

    class Migration:
        app_label = "shop"
        operations = [
            AlterField("order", "qty", IntegerField(default=1)),
            AddField(
                "order",
                "buyer",
                ForeignKey("shop.Customer", on_delete=deletion.CASCADE, null=True),
            ),
            AddField("newmodel", "x", IntegerField()),  # created by the change: unknown
            RunSQL("UPDATE legacy SET a = 1; ALTER TABLE orders ADD FOREIGN KEY (x) REFERENCES t2"),
        ]

    assert touched_tables([Migration], state) == ["orders", "shop_customer", "legacy", "t2"]


def test_sql_tables_accepts_every_runsql_shape():
    assert list(sql_tables(["DELETE FROM a WHERE x", ("UPDATE b SET y = %s", [1])])) == ["a", "b"]
    assert list(sql_tables(None)) == []


# --- generated values, on a real database ------------------------------------------------------


@pytest.fixture
def scratch(pg_server: PostgresServer) -> Iterator[ConnectionInfo]:
    with scratch_database(pg_server, purpose="seedtest") as info:
        yield info


def test_generated_values_fit_the_catalog(scratch):
    with scratch.connect(autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE cust (
                id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                email varchar(254) UNIQUE NOT NULL, code varchar(3) NOT NULL,
                created timestamptz NOT NULL, born date, active boolean NOT NULL,
                data jsonb NOT NULL, tags text[] NOT NULL, ip inet, token uuid UNIQUE NOT NULL,
                price numeric(5, 2) NOT NULL, small smallint NOT NULL, ratio float8 NOT NULL,
                blob bytea NOT NULL, span interval NOT NULL);
            INSERT INTO cust (email, code, created, active, data, tags, token, price, small,
                              ratio, blob, span)
                 VALUES ('v1', 'v1', now(), true, '{}', '{}', gen_random_uuid(), 1, 1, 1,
                         '', '1s');
            CREATE TABLE ord (id serial PRIMARY KEY,
                              customer_id bigint NOT NULL REFERENCES cust (id),
                              parent_id int REFERENCES ord (id),
                              qty int NOT NULL CHECK (qty > 0), note text);
            CREATE TABLE line (code varchar(12) PRIMARY KEY,
                               ord_id int NOT NULL REFERENCES ord (id));
            CREATE TABLE profile (cust_id bigint PRIMARY KEY REFERENCES cust (id));
            CREATE TABLE ids_only (id bigserial PRIMARY KEY);
            CREATE TABLE odd (id serial PRIMARY KEY, p point NOT NULL);
            """
        )
        tables = tables_to_seed(conn, ["line", "profile", "ids_only", "odd", "absent"], set())
        names = [t.name for t in tables]
        assert names.index("cust") < names.index("ord") < names.index("line")
        assert "absent" not in names
        outcome = seed_tables(conn, tables, 1000)
        assert dict(outcome.seeded) == {
            "cust": 1000,
            "ord": 1000,
            "line": 1000,
            "profile": 1000,
            "ids_only": 1000,
        }
        assert outcome.skipped == [
            "could not seed odd: no generator for NOT NULL column p of type point"
        ]
        count = conn.execute("SELECT count(*) FROM cust").fetchone()
        assert count == (1001,)  # the existing row kept, its unique email not hit
        nulls = conn.execute("SELECT count(parent_id), count(note) FROM ord").fetchone()
        assert nulls == (0, 1000)  # nullable reference left NULL, nullable text filled
        # profile's key is unique and references cust: 1000 distinct customers
        distinct = conn.execute("SELECT count(DISTINCT cust_id) FROM profile").fetchone()
        assert distinct == (1000,)
        analyzed = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'line'").fetchone()
        assert analyzed == (1000.0,)


def test_each_table_is_seeded_once_per_run(scratch):
    with scratch.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE a (id serial PRIMARY KEY, n int NOT NULL)")
        first = tables_to_seed(conn, ["a"], set())
        seed_tables(conn, first, 10)
        assert tables_to_seed(conn, ["a"], {t.oid for t in first}) == []


def test_a_failing_table_does_not_undo_the_others(scratch):
    with scratch.connect(autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE good (id serial PRIMARY KEY, n int NOT NULL);"
            "CREATE TABLE bad (id serial PRIMARY KEY, n int NOT NULL CHECK (n < 0))"
        )
        outcome = seed_tables(conn, tables_to_seed(conn, ["bad", "good"], set()), 20)
        assert outcome.seeded == [("good", 20)]
        assert outcome.skipped[0].startswith('could not seed bad: new row for relation "bad"')
        assert conn.execute("SELECT count(*) FROM good").fetchone() == (20,)
        assert not conn.info.transaction_status  # nothing left open
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO bad (n) VALUES (1)")


def test_the_command_accepts_seed_rows():
    parser = Command().create_parser("manage.py", "migration_audit")
    options = parser.parse_args(["--seed-rows", "100000"])
    assert options.seed_rows == 100000


def test_migrations_judged_each_on_its_own_seed_each_table_once(make_app):
    """Every migration of an app (each its own change): a table is seeded before the
    first migration that touches it once it exists, and never again."""
    from django.test.utils import override_settings

    from migration_guard.conf import build_config
    from migration_guard.discovery import Selection
    from migration_guard.engine import AuditRequest, run_audit

    app = make_app(
        [ORDER],
        [QTY_TO_BIGINT, expect_rows("{label}_order", 30)],
        [CUSTOMER],
        [
            "migrations.AddIndex('customer', models.Index(fields=['joined'], name='cj_idx'))",
            expect_rows("{label}_customer", 30),
            expect_rows("{label}_order", 30),  # not seeded a second time
        ],
    )
    _write(app, 2, "{label}", app.label)
    _write(app, 4, "{label}", app.label)
    values = {"postgres": "url", "database_url": app.factory.url, "seed_rows": 30}
    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", app.label],
        MIGRATION_GUARD={},
    ):
        config = build_config(values, django_settings={}, use_pyproject=False)
        request = AuditRequest(selection=Selection(app_label=app.label), config=config)
        report = run_audit(request)
    assert [m.status for m in report.migrations] == ["audited"] * 4, [
        m.error for m in report.migrations
    ]
    [note] = seed_notes(report)
    assert f"30 into {app.label}_order, 30 into {app.label}_customer" in note


def test_amounts_are_modest_so_sums_of_them_fit_their_columns(scratch):
    """A line's quantity times its price, summed per order, fits the order's total column
    (numeric(12, 2)): generated prices near numeric(10, 2)'s limit made such sums overflow."""
    with scratch.connect(autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE amt (id serial PRIMARY KEY, qty int NOT NULL, "
            "price numeric(10, 2) NOT NULL, small numeric(3, 1) NOT NULL)"
        )
        seed_tables(conn, tables_to_seed(conn, ["amt"], set()), 100_000)
        row = conn.execute(
            "SELECT min(price), max(price), min(small), max(small), "
            "max(qty * price)::numeric(12, 2) FROM amt"
        ).fetchone()
    assert row is not None
    assert row[0] >= 1 and row[1] < 1000 and row[2] >= 1 and row[3] < 100


def test_some_tables_get_their_own_number_of_rows(scratch):
    with scratch.connect(autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE big (id serial PRIMARY KEY); "
            "CREATE TABLE few (id serial PRIMARY KEY, big_id int NOT NULL REFERENCES big (id))"
        )
        outcome = seed_tables(conn, tables_to_seed(conn, ["few"], set()), 50, counts={"few": 7})
    assert outcome.seeded == [("big", 50), ("few", 7)]


def test_state_only_operations_count_when_asked():
    state = ProjectState()
    state.add_model(ModelState("shop", "thing", [("id", BigAutoField(primary_key=True))]))

    class Migration:
        app_label = "shop"
        operations = [
            SeparateDatabaseAndState(state_operations=[RenameField("thing", "a", "b")]),
        ]

    assert touched_tables([Migration], state) == []
    assert touched_tables([Migration], state, state_operations=True) == ["shop_thing"]
